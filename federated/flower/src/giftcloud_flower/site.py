"""A site's Flower settings: its name, its disclosure policy and its own api -- where its
admin approves apps (by the SHA-256 of the app bundle), where its ClientApps read its
de-identified archive (DICOMweb) and where every decision goes into its audit trail, with a
project key that never leaves the site.

One JSON file, written by the site's admin, named by ``GIFTCLOUD_FLOWER_SITE``; nothing in
it comes from the hub, so no run can loosen it.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

ENV = "GIFTCLOUD_FLOWER_SITE"
#: the smallest minimum count a site may set (the counts' floor: k is never below 5)
K_FLOOR = 5


class SiteConfigError(ValueError):
    """The site's file is missing or says something this gate will not run with."""


@dataclass(frozen=True)
class Learning:
    """Local differential privacy on every model update the site sends (Flower's own
    ``LocalDpMod``): the update — the weights replied minus the weights received — clipped
    to an L2 norm of ``clipping_norm``, then Gaussian noise for (``epsilon``, ``delta``)
    added to every weight, the sensitivity being the clipping norm."""

    clipping_norm: float
    epsilon: float
    delta: float
    #: the epsilon one person (who asked at the hub) may spend on the site's project over
    #: every round of every run, kept in the site's api; None: no budget across runs
    budget: float | None = None

    def __post_init__(self) -> None:
        if self.budget is not None and not self.budget > 0:
            raise SiteConfigError("learning's budget is above 0 (leave it out for none)")
        if not self.clipping_norm > 0:
            raise SiteConfigError("learning's clipping_norm is above 0")
        if not self.epsilon > 0:
            raise SiteConfigError("learning's epsilon is above 0")
        if not 0 < self.delta < 1:
            raise SiteConfigError("learning's delta lies between 0 and 1")

    @property
    def noise_std(self) -> float:
        """The Gaussian mechanism's standard deviation, as LocalDpMod computes it."""
        return self.clipping_norm * math.sqrt(2 * math.log(1.25 / self.delta)) / self.epsilon


@dataclass(frozen=True)
class Policy:
    """What the site releases: at least ``k`` units behind any reply; a histogram of at
    most ``max_bins_share`` x n bins; minimum and maximum widened outwards by a random
    share of the range between ``widen[0]`` and ``widen[1]`` (NVFlare's cleansing); with
    ``learning``, every model update clipped and noised (:class:`Learning`)."""

    k: int = 10
    max_bins_share: float = 0.2
    widen: tuple[float, float] = (0.1, 0.3)
    learning: Learning | None = None

    def __post_init__(self) -> None:
        if self.k < K_FLOOR:
            raise SiteConfigError(f"k is {self.k}: a site's minimum count is never below 5")
        if not 0 < self.max_bins_share <= 1:
            raise SiteConfigError("max_bins_share is a share of n, above 0 and at most 1")
        low, high = self.widen
        if not 0 < low <= high:
            raise SiteConfigError("widen is [low, high] with 0 < low <= high")


@dataclass(frozen=True)
class Site:
    name: str
    policy: Policy
    api_url: str
    project: str
    key_file: Path

    def key(self) -> str:
        return self.key_file.read_text().strip()


def load(path: str | Path | None = None) -> Site:
    """The site's file (``path``, else ``$GIFTCLOUD_FLOWER_SITE``), checked."""
    where = path or os.environ.get(ENV)
    if not where:
        raise SiteConfigError(f"no site file: set {ENV} to the site's Flower settings")
    try:
        raw = json.loads(Path(where).read_text())
    except (OSError, ValueError) as error:
        raise SiteConfigError(f"the site file {where} cannot be read: {error}") from error
    if not isinstance(raw, dict):
        raise SiteConfigError(f"the site file {where} is not a JSON object")
    try:
        policy = raw.get("policy", {})
        widen = policy.get("widen", [0.1, 0.3])
        for moved in ("apps", "audit_file"):
            if moved in raw:
                raise SiteConfigError(
                    f"the site file {where} names {moved!r}: approvals and the audit live in"
                    " the site's api now (giftcloud federate flower --approve NAME=DIGEST);"
                    " take it out"
                )
        return Site(
            name=str(raw["site"]),
            policy=Policy(
                k=int(policy.get("k", 10)),
                max_bins_share=float(policy.get("max_bins_share", 0.2)),
                widen=(float(widen[0]), float(widen[1])),
                learning=_learning(policy.get("learning")),
            ),
            api_url=str(raw["api"]["url"]).rstrip("/"),
            project=str(raw["api"]["project"]),
            key_file=Path(raw["api"]["key_file"]),
        )
    except SiteConfigError:
        raise
    except (KeyError, IndexError) as error:
        raise SiteConfigError(f"the site file {where} lacks {error}") from error
    except (TypeError, ValueError, AttributeError) as error:
        raise SiteConfigError(
            f"the site file {where} has a value of the wrong kind: {error}"
        ) from error


def _learning(raw: object) -> Learning | None:
    """The policy's ``learning``: absent, or clipping_norm, epsilon and delta, all three,
    and a budget if the site keeps one."""
    if raw is None:
        return None
    needed = {"clipping_norm", "epsilon", "delta"}
    if not isinstance(raw, dict) or not needed <= set(raw) <= needed | {"budget"}:
        raise SiteConfigError(
            "the policy's learning is an object of clipping_norm, epsilon and delta"
            " (and budget, if the site keeps one)"
        )
    budget = raw.get("budget")
    return Learning(
        float(raw["clipping_norm"]),
        float(raw["epsilon"]),
        float(raw["delta"]),
        None if budget is None else float(budget),
    )

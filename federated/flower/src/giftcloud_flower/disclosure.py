"""The site's disclosure control, as a Flower mod around every reply of every app.

The gate (:mod:`giftcloud_flower.clientapp`) puts :func:`mod` around the ClientApp it
loads, so the rule is the site's, not the app's: an app that leaves the mod out still
has its replies pass through it. A reply leaves the site only as one of two shapes:

* **statistics** — one ``MetricRecord`` named ``statistics``: ``count`` and, per
  feature ``f``, ``sum.f``, ``min.f``, ``max.f``, ``hist.f``. Released when the count is
  at least the site's k, every histogram has at most ``max_bins_share`` x n bins and adds
  up to n; minimum and maximum widened outwards by a random share of the range (NVFlare's
  cleansing: the exact extremes, often one person's, never leave);
* **a model update** — an ``ArrayRecord`` named ``arrays`` and a ``MetricRecord`` named
  ``metrics`` holding ``num-examples`` (at least k) and optionally ``loss``. Where the
  site's policy sets ``learning``, the update has been clipped and noised by Flower's
  ``LocalDpMod`` first, and the loss does not leave.

Anything else, or a reply that fails its rule, is replaced by an error that says why;
the raw reply never leaves. The site's name is added by the mod (``ConfigRecord``
``site``) so the hub can say whose answer it pooled.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from flwr.app import (
    ConfigRecord,
    Context,
    Error,
    Message,
    MessageType,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp.mod import LocalDpMod

from giftcloud_flower.site import Policy, Site

#: the error code of a reply the site's disclosure control withheld
WITHHELD = 900
#: the error code of an app that failed at the site (its own reason stays at the site)
FAILED = 901
Call = Callable[[Message, Context], Message]


class Withheld(Exception):
    """A reply this site's policy does not release; the message is the reason."""


def _too_few(n: float, policy: Policy, what: str) -> None:
    if n < policy.k:
        raise Withheld(f"{what} is {n:g}, below this site's minimum count k = {policy.k}")


def _statistics(record: MetricRecord, policy: Policy, rng: random.Random) -> MetricRecord:
    if "count" not in record:
        raise Withheld("statistics without a count")
    count = float(record["count"])  # type: ignore[arg-type]
    _too_few(count, policy, "n")
    allowed = math.floor(policy.max_bins_share * count)
    out = MetricRecord({"count": int(count)})
    features = {key.split(".", 1)[1] for key in record if "." in key}
    for key in record:
        if key != "count" and (
            "." not in key or key.split(".", 1)[0] not in ("sum", "min", "max", "hist")
        ):
            raise Withheld(f"statistics hold {key!r}: only count, sum, min, max and hist leave")
    for f in sorted(features):
        if f"hist.{f}" in record:
            hist = record[f"hist.{f}"]
            bins = list(hist) if isinstance(hist, list) else [hist]
            if len(bins) > allowed:
                raise Withheld(
                    f"a histogram of {f} in {len(bins)} bins for n = {count:g}: this site "
                    f"allows at most {allowed} ({policy.max_bins_share:.0%} of n)"
                )
            if any(not isinstance(b, int) or b < 0 for b in bins):
                raise Withheld(f"the histogram of {f} holds a bin that is not a count")
            if sum(bins) != count:
                raise Withheld(f"the histogram of {f} holds {sum(bins):g} of n = {count:g}")
            out[f"hist.{f}"] = [int(b) for b in bins]
        if f"sum.{f}" in record:
            out[f"sum.{f}"] = float(record[f"sum.{f}"])  # type: ignore[arg-type]
        if f"min.{f}" in record or f"max.{f}" in record:
            low = float(record.get(f"min.{f}", record.get(f"max.{f}")))  # type: ignore[arg-type]
            high = float(record.get(f"max.{f}", low))  # type: ignore[arg-type]
            span = (high - low) or abs(high) or 1.0
            out[f"min.{f}"] = low - rng.uniform(*policy.widen) * span
            out[f"max.{f}"] = high + rng.uniform(*policy.widen) * span
    return out


def _update(content: RecordDict, policy: Policy) -> RecordDict:
    metrics = content.metric_records.get("metrics")
    if metrics is None or set(content.keys()) != {"arrays", "metrics"}:
        raise Withheld("a model update is an ArrayRecord 'arrays' and a MetricRecord 'metrics'")
    extra = set(metrics.keys()) - {"num-examples", "loss"}
    if extra:
        raise Withheld(f"a model update's metrics hold {sorted(extra)}: only num-examples, loss")
    _too_few(float(metrics.get("num-examples", 0)), policy, "num-examples")  # type: ignore[arg-type]
    if policy.learning is not None:  # an exact loss on the site's data would go round the noise
        metrics = MetricRecord({"num-examples": metrics["num-examples"]})
    return RecordDict({"arrays": content.array_records["arrays"], "metrics": metrics})


def cleanse(content: RecordDict, site: Site, rng: random.Random) -> RecordDict:
    """What of ``content`` the site releases, with its name; :class:`Withheld` if nothing."""
    names = set(content.keys())
    if names == {"statistics"} and "statistics" in content.metric_records:
        released = RecordDict(
            {"statistics": _statistics(content.metric_records["statistics"], site.policy, rng)}
        )
    elif "arrays" in content.array_records:
        released = _update(content, site.policy)
    else:
        raise Withheld(
            f"the reply holds {sorted(names)}: this site releases statistics or a model update"
        )
    released["site"] = ConfigRecord({"name": site.name})
    return released


def summary(content: RecordDict) -> dict[str, object]:
    """A reply's numbers for the site's audit: metrics and configs whole, arrays by shape."""
    out: dict[str, object] = {}
    for name, record in content.items():
        if isinstance(record, MetricRecord | ConfigRecord):
            out[name] = dict(record)
        else:
            out[name] = {key: list(array.shape) for key, array in record.items()}
    return out


def failed(site: Site, message: Message, what: str) -> Message:
    """The hub's answer when the app failed here: that it did, not in the app's words (an
    exception's message may quote the site's data); the site's audit trail keeps them."""
    reason = f"{site.name}: the app failed here ({what}); the site's audit trail has the reason"
    return Message(Error(code=FAILED, reason=reason), reply_to=message)


def trains(message: Message) -> bool:
    """A training round's message, carrying the model (one ArrayRecord) to be updated."""
    return (
        message.metadata.message_type == MessageType.TRAIN
        and len(message.content.array_records) == 1
    )


#: the run configuration's keys the hub's runner sets -> the audit's fields
HUB_KEYS = {
    "giftcloud-asked-by": "asked_by",
    "giftcloud-project": "hub_project",
    "giftcloud-run": "hub_run",
}


def asker(context: Context) -> dict[str, str]:
    """Who asked at the hub, in which project and run, when the hub's runner started the
    run (it sets them in the run's configuration); nothing for a run started otherwise."""
    return {
        field: str(context.run_config[key])
        for key, field in HUB_KEYS.items()
        if context.run_config.get(key)
    }


def budget_spender(
    site: Site, spend: Callable[[dict[str, object]], dict[str, object]] | None
) -> Callable[[dict[str, object]], dict[str, object]]:
    """What releasing one training reply under the site's DP costs who asked: the round's
    epsilon from their budget on the site's project, when the site keeps one (``spend``
    records it in the site's ledger, raising :class:`Withheld` when it would pass the
    budget). A run that does not say who asked is withheld: the budget is per person."""
    learning = site.policy.learning

    def charge(asked: dict[str, object]) -> dict[str, object]:
        if learning is None or learning.budget is None:
            return {}
        if not asked.get("asked_by"):
            raise Withheld(
                "this site keeps a privacy budget per person for learning: ask for the run"
                " at the hub's api (giftcloud federate flower-run), which says who asks"
            )
        if spend is None:
            raise Withheld("this site has no ledger for its learning budget here")
        what: dict[str, object] = {
            "asked_by": asked["asked_by"],
            "epsilon": learning.epsilon,
            "budget": learning.budget,
            "hub_run": asked.get("hub_run", ""),
            "run": asked["run"],
        }
        return spend(what)

    return charge


def mod_for(
    site: Site,
    rng: random.Random | None = None,
    record: Callable[[dict[str, object]], None] | None = None,
    spend: Callable[[dict[str, object]], dict[str, object]] | None = None,
) -> Callable[[Message, Context, Call], Message]:
    """The Flower mod applying ``site``'s rule to every reply; each decision, with the raw
    and the released values, goes to ``record`` (the site's audit). With the policy's
    ``learning``, a training reply has Flower's local DP applied first (the note says so,
    with its parameters); a reply it cannot apply to is an error, and nothing leaves. An app
    that fails — raises, or replies an error — is reported to the hub as failed, without its
    own words (they are in the audit). Where the site keeps a learning budget, each released
    training reply spends the round's epsilon from who asked (``spend``, the site's ledger;
    see :func:`budget_spender`)."""
    chance = rng or random.SystemRandom()
    charge = budget_spender(site, spend)
    note = record or (lambda _: None)
    learning = site.policy.learning
    noisy, noise = None, {}
    if learning is not None:
        noisy = LocalDpMod(
            learning.clipping_norm, learning.clipping_norm, learning.epsilon, learning.delta
        )
        noise = {
            "mechanism": "Gaussian, Flower's LocalDpMod",
            "clipping_norm": learning.clipping_norm,
            "epsilon": learning.epsilon,
            "delta": learning.delta,
            "std": learning.noise_std,
        }

    def mod(message: Message, context: Context, call_next: Call) -> Message:
        asked: dict[str, object] = {
            "run": message.metadata.run_id,
            "type": message.metadata.message_type,
            **asker(context),
        }
        dp = noisy if noisy is not None and trains(message) else None
        if dp is not None:  # Flower's own local DP: the update clipped, noise added
            asked["noise"] = noise
        try:
            reply = (
                dp(message, context, call_next) if dp is not None else call_next(message, context)
            )
        except Exception as error:
            note({**asked, "decision": "failed", "reason": f"{type(error).__name__}: {error}"})
            return failed(site, message, type(error).__name__)
        if reply.has_error():
            note({**asked, "decision": "failed", "reason": reply.error.reason})
            return failed(site, message, f"error {reply.error.code}")
        raw = summary(reply.content)
        try:
            reply.content = cleanse(reply.content, site, chance)
            if dp is not None and (spent := charge(asked)):
                asked["budget"] = spent
        except Withheld as why:
            note({**asked, "decision": "withheld", "reason": str(why), "raw": raw})
            return Message(Error(code=WITHHELD, reason=f"{site.name}: {why}"), reply_to=message)
        released = summary(reply.content)
        note({**asked, "decision": "released", "raw": raw, "released": released})
        return reply

    return mod

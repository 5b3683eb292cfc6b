"""The site's own api, as the gate uses it: the apps its admin approved, and the audit
trail every decision goes into. Both fail closed: an api that cannot be asked runs nothing,
and a decision that cannot be recorded is not acted on."""

from __future__ import annotations

import json
from typing import Any

import httpx

from giftcloud_flower.site import Site

TIMEOUT = 30.0


class SiteApiError(Exception):
    """The site's api could not be asked or did not agree."""


class OverBudget(SiteApiError):
    """The site's api refused to spend: the person's budget would be passed (the reason)."""


def _call(site: Site, method: str, path: str, body: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {site.key()}"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    try:
        answer = httpx.request(
            method, f"{site.api_url}{path}", headers=headers, content=body, timeout=TIMEOUT
        )
    except (httpx.HTTPError, OSError) as error:
        raise SiteApiError(
            f"{site.name}'s api at {site.api_url} cannot be reached: {error}"
        ) from error
    if answer.status_code == 409 and path.endswith("/spend"):
        raise OverBudget(str(answer.json().get("detail", answer.text))[:500])
    if answer.status_code >= 400:
        raise SiteApiError(
            f"{site.name}'s api answered {answer.status_code} to {method} {path}: {answer.text[:300]}"
        )
    return answer


def approved(site: Site) -> dict[str, str]:
    """The apps the site's admin approved now: FAB SHA-256 -> the name they gave it."""
    found = _call(site, "GET", "/api/federation/flower/apps").json()
    return {str(app["digest"]): str(app["name"]) for app in found}


def record(site: Site, decision: dict[str, Any]) -> None:
    """One decision into the site's audit trail (under the project the gate reads)."""
    body = json.dumps(decision, default=str)  # numbers from numpy as plain JSON
    _call(site, "POST", f"/api/projects/{site.project}/federation/flower/decisions", body)


def spend(site: Site, what: dict[str, Any]) -> dict[str, Any]:
    """Spend epsilon from the budget of who asked on the site's project (the site's api keeps
    the ledger): the amount spent and the budget; :class:`OverBudget` when it would pass."""
    body = json.dumps(what, default=str)
    found: dict[str, Any] = _call(
        site, "POST", f"/api/projects/{site.project}/federation/flower/spend", body
    ).json()
    return found

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
    """The site's api could not be asked (``status`` 0) or did not agree (its status and
    the reason it gave, ``detail``)."""

    def __init__(self, message: str, status: int = 0, detail: str = "") -> None:
        super().__init__(message)
        self.status, self.detail = status, detail


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
    if answer.status_code >= 400:
        try:
            detail = str(answer.json().get("detail", answer.text))
        except ValueError:
            detail = answer.text
        raise SiteApiError(
            f"{site.name}'s api answered {answer.status_code} to {method} {path}: {detail[:300]}",
            answer.status_code,
            detail[:500],
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
    try:
        answer = _call(site, "POST", f"/api/projects/{site.project}/federation/flower/spend", body)
    except SiteApiError as error:
        if error.status == 409:  # the ledger's refusal: its reason goes to the hub
            raise OverBudget(error.detail) from error
        raise
    found: dict[str, Any] = answer.json()
    return found

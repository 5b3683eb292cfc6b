"""A small client for giftcloud's public API (tokens, projects, STOW-RS)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from giftcloud_dicom.multipart import related

#: giftcloud's private attributes in STOW-RS answers (see giftcloud_ingest.stow.response)
WHOLE_REASON, REQUEST_REFUSED, PART_INDEX = "00091001", "00091002", "00091003"


def stow_reasons(body: dict[str, Any]) -> list[str]:
    """Every reason a STOW-RS answer of giftcloud gives, in full: each failed part's, then
    the request's own refusal if it was refused part way."""
    reasons = [
        str(item.get(WHOLE_REASON, item.get("00000902", {})).get("Value", [""])[0])
        for item in body.get("00081198", {}).get("Value", [])
    ]
    if REQUEST_REFUSED in body:
        reasons.append(str(body[REQUEST_REFUSED]["Value"][0]))
    return reasons


@dataclass
class StoreResult:
    status: int
    stored: int
    failed: int
    reasons: list[str] = field(default_factory=list)
    body: dict[str, Any] = field(default_factory=dict)


def multipart_related(files: list[bytes]) -> tuple[bytes, str]:
    """A STOW-RS body and its Content-Type."""
    return related(files)


class Client:
    """Signed in with a username and password, or with an API key (``gck_...``)."""

    def __init__(
        self,
        url: str,
        *,
        username: str = "",
        password: str = "",
        api_key: str = "",
        timeout: float = 120,
    ) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, timeout=timeout)
        if api_key:  # every service takes the key itself as a bearer credential
            self.http.headers["Authorization"] = f"Bearer {api_key}"
            return
        response = self.http.post("/auth/token", data={"username": username, "password": password})
        response.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def create_project(self, name: str, title: str = "", wait_seconds: float = 30) -> None:
        """Create a project (if new) and wait until ingest accepts data for it: services learn
        of new projects from events, a moment after auth makes them."""
        response = self.http.post("/auth/projects", json={"name": name, "title": title})
        if response.status_code != 409:
            response.raise_for_status()
        deadline = time.monotonic() + wait_seconds
        while self.http.get(f"/ingest/{name}/uploads").status_code == 404:
            if time.monotonic() > deadline:
                raise TimeoutError(f"project {name!r} was created but ingest does not know it yet")
            time.sleep(0.1)

    def store(self, project: str, files: list[bytes]) -> StoreResult:
        body, content_type = multipart_related(files)
        response = self.http.post(
            f"/dicomweb/{project}/studies", content=body, headers={"Content-Type": content_type}
        )
        if response.status_code in (401, 403, 404, 413, 415):
            raise RuntimeError(f"{response.status_code}: {response.text}")
        data = response.json()
        return StoreResult(
            status=response.status_code,
            stored=len(data.get("00081199", {}).get("Value", [])),
            failed=len(data.get("00081198", {}).get("Value", [])),
            reasons=stow_reasons(data),
            body=data,
        )

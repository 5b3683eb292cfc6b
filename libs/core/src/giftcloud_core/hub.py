"""A site's connection to its hub: one HTTP client and the machine credential the hub
issued, exchanged for an access token cached until shortly before it expires. ingest
forwards and pulls results through it; api answers federated questions through it.
Outbound only: a hospital's firewall lets the site call the hub, never the other way."""

from __future__ import annotations

import time
from typing import Any

import httpx

from giftcloud_core.credentials import http_exchange, split_key
from giftcloud_core.errors import Conflict, NotFound
from giftcloud_core.settings import ForwardSettings


class HubClient:
    def __init__(self, settings: ForwardSettings) -> None:
        self.settings = settings
        self.url = settings.hub_url.rstrip("/")
        self._token: tuple[str, float] | None = None
        self._http: httpx.AsyncClient | None = None

    @property
    def has_credential(self) -> bool:
        config = self.settings
        return config.api_key is not None or bool(config.client_id and config.client_secret)

    def require(self, doing: str) -> None:
        """409 when this deployment cannot ``doing``: no hub, or no credential for it."""
        if not self.url:
            raise Conflict(
                f"this deployment has no hub to {doing}: set GIFTCLOUD_FORWARD__HUB_URL and"
                " the hub's machine credential (GIFTCLOUD_FORWARD__CLIENT_ID and"
                " __CLIENT_SECRET, or __API_KEY)"
            )
        if not self.has_credential:
            raise Conflict(
                "no machine credential for the hub: set GIFTCLOUD_FORWARD__CLIENT_ID and"
                " __CLIENT_SECRET (an OAuth2 client the hub issued), or __API_KEY"
            )

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.settings.timeout_seconds)
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def request(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """``method`` on the hub's ``path`` with the machine credential's token; a 401 makes
        the next call ask for a new token (the hub's signing key rotated, the token revoked).
        Connection errors are the caller's to word."""
        response = await self.http.request(
            method,
            f"{self.url}{path}",
            headers={**await self.headers(), **(headers or {})},
            **kwargs,
        )
        if response.status_code == 401:
            self._token = None
        return response

    async def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.bearer()}"}

    async def bearer(self) -> str:
        """The hub's access token for the machine credential, cached until 30 s before it
        expires (an API key is exchanged the same way, as the hub's services do)."""
        if self._token is not None and self._token[1] > time.monotonic():
            return self._token[0]
        config = self.settings
        if config.api_key is not None:
            client_id, secret = split_key(config.api_key.get_secret_value())
        elif config.client_id and config.client_secret is not None:
            client_id, secret = config.client_id, config.client_secret.get_secret_value()
        else:
            raise NotFound(
                "no machine credential for the hub: set GIFTCLOUD_FORWARD__CLIENT_ID and"
                " __CLIENT_SECRET, or __API_KEY"
            )
        token, lifetime = await http_exchange(f"{self.url}/auth/token", self.http)(
            client_id, secret
        )
        self._token = (token, time.monotonic() + max(0, lifetime - 30))
        return token

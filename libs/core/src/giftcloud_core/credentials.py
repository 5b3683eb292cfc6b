"""API keys used as bearer credentials: every service exchanges them at auth for a short
access token (OAuth2 client credentials) and caches it until shortly before it expires,
so a revoked key stops working within one access-token lifetime."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

import httpx

from giftcloud_core.errors import Unauthorized
from giftcloud_core.tokens import API_KEY_PREFIX

#: exchanges (client id, secret) for (access token, lifetime in seconds)
Exchange = Callable[[str, str], Awaitable[tuple[str, int]]]


def split_key(key: str) -> tuple[str, str]:
    """An API key ``gck_<id>_<secret>`` as its client id and secret; 401 if it is not one."""
    head, _, secret = key.removeprefix(API_KEY_PREFIX).partition("_")
    if not key.startswith(API_KEY_PREFIX) or not head or not secret:
        raise Unauthorized("malformed API key")
    return API_KEY_PREFIX + head, secret


def http_exchange(token_url: str, client: httpx.AsyncClient | None = None) -> Exchange:
    """Ask auth's token endpoint for a token (grant type client_credentials)."""

    async def exchange(client_id: str, secret: str) -> tuple[str, int]:
        http = client or httpx.AsyncClient(timeout=10)
        try:
            response = await http.post(
                token_url,
                data={
                    "grant_type": "client_credentials",
                    "client_id": client_id,
                    "client_secret": secret,
                },
            )
        except httpx.HTTPError as exc:
            raise Unauthorized("cannot reach auth to check the API key; try again") from exc
        finally:
            if client is None:
                await http.aclose()
        if response.status_code != 200:
            detail = response.json().get("detail", "") if response.content else ""
            raise Unauthorized(f"API key refused: {detail or response.status_code}")
        body = response.json()
        return str(body["access_token"]), int(body["expires_in"])

    return exchange


class KeyExchange:
    """Turns API keys into access tokens, cached (by the key's hash) until 30 s before they
    expire; at most ``size`` keys are remembered."""

    def __init__(self, exchange: Exchange, size: int = 1024) -> None:
        self._exchange = exchange
        self._size = size
        self._cache: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._lock = asyncio.Lock()

    def forget(self, key: str) -> bool:
        """Drop the token cached for ``key``; whether there was one."""
        return self._cache.pop(hashlib.sha256(key.encode()).hexdigest(), None) is not None

    async def token_for(self, key: str) -> str:
        digest = hashlib.sha256(key.encode()).hexdigest()
        cached = self._cache.get(digest)
        if cached is not None and cached[1] > time.monotonic():
            self._cache.move_to_end(digest)
            return cached[0]
        client_id, secret = split_key(key)
        token, lifetime = await self._exchange(client_id, secret)
        async with self._lock:
            self._cache[digest] = (token, time.monotonic() + max(0, lifetime - 30))
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return token

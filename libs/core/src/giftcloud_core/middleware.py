"""ASGI middleware every service shares (pure ASGI, so streamed bodies pass untouched)."""

from __future__ import annotations

import json
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from giftcloud_core.logs import correlation_id
from giftcloud_core.metrics import HTTP_REQUESTS, HTTP_SECONDS
from giftcloud_core.network import address_in, client_address


async def _answer(
    send: Send, status: int, detail: str, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestContext:
    """Correlation id in and out, request metrics."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-correlation-id", b"").decode("latin-1")[:64]
        cid = given if given.isprintable() and given else uuid.uuid4().hex
        token = correlation_id.set(cid)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-correlation-id", cid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            HTTP_REQUESTS.labels(self.service, scope["method"], path, str(status)).inc()
            HTTP_SECONDS.labels(self.service, scope["method"], path).observe(
                time.perf_counter() - started
            )
            correlation_id.reset(token)


class RefuseNulBytes:
    """A URL with a NUL byte (in its path or query) is a 400, before any route sees it; no
    database takes NUL in text, and no name or UID holds one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
            for where, raw in (("path", raw_path), ("query", scope.get("query_string", b""))):
                if b"\x00" in unquote_to_bytes(raw):
                    await _answer(send, 400, f"the URL's {where} holds a NUL byte")
                    return
        await self.app(scope, receive, send)


#: the Swagger UI / ReDoc pages: their own assets, and an inline script that starts them
_DOCS_PATHS = ("/docs", "/redoc", "/docs/oauth2-redirect")
_PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline';"
    " img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline';"
    " img-src 'self' data:; worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'"
)
_API_CSP = "default-src 'none'; frame-ancestors 'none'"


class SecurityHeaders:
    """Strict defaults on every answer: no sniffing, no referrer, no framing, a CSP without
    inline script (the API docs pages excepted), HSTS over TLS, no caching of /auth."""

    def __init__(self, app: ASGIApp, trusted_proxies: Sequence[str]) -> None:
        self.app = app
        self.trusted_proxies = trusted_proxies

    def _over_tls(self, scope: Scope) -> bool:
        if scope.get("scheme") == "https":
            return True
        peer = (scope.get("client") or ("", 0))[0]
        if not self.trusted_proxies or not address_in(peer, self.trusted_proxies):
            return False
        headers: dict[bytes, bytes] = dict(scope.get("headers") or [])
        proto = headers.get(b"x-forwarded-proto", b"").split(b",")[0].strip()
        return proto == b"https"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        tls = self._over_tls(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                present = {name.lower() for name, _ in headers}
                content_type = dict(headers).get(b"content-type", b"")
                if path in _DOCS_PATHS:
                    csp = _DOCS_CSP
                elif content_type.startswith(b"text/html"):
                    csp = _PAGE_CSP
                else:
                    csp = _API_CSP
                extra = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                    (b"content-security-policy", csp.encode()),
                ]
                if tls:
                    extra.append((b"strict-transport-security", b"max-age=31536000"))
                if path.startswith("/auth/"):
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = headers + [h for h in extra if h[0] not in present]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """Requests under a path prefix may send at most so many bytes (413 beyond). Meant for
    small limits (the auth routes): the body is read first, then handed on whole."""

    def __init__(self, app: ASGIApp, limits: Mapping[str, int]) -> None:
        self.app = app
        self.limits = sorted(limits.items(), key=lambda item: -len(item[0]))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = next(
            (n for prefix, n in self.limits if scope.get("path", "").startswith(prefix)), None
        )
        if scope["type"] != "http" or limit is None:
            await self.app(scope, receive, send)
            return
        refused = f"the request body may be at most {limit} bytes here"
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _answer(send, 413, refused)
            return
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)
                return
            chunks.append(message.get("body", b""))
            received += len(chunks[-1])
            if received > limit:
                await _answer(send, 413, refused)
                return
            if not message.get("more_body", False):
                break
        whole: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([whole], then=receive), send)


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    """A receive that gives ``messages`` first, then what ``then`` gives (a disconnect)."""
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive


class RateLimit:
    """At most ``rate`` requests a second from one client address under each prefix, in
    bursts of up to five seconds' worth (token buckets, per process); 429 beyond."""

    def __init__(
        self, app: ASGIApp, rates: Mapping[str, float], trusted_proxies: Sequence[str]
    ) -> None:
        self.app = app
        self.rates = dict(rates)
        self.trusted_proxies = trusted_proxies
        self._buckets: OrderedDict[tuple[str, str], tuple[float, float]] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        prefix = next((p for p in self.rates if path.startswith(p)), None)
        if scope["type"] != "http" or prefix is None:
            await self.app(scope, receive, send)
            return
        rate = self.rates[prefix]
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        peer = (scope.get("client") or ("", 0))[0]
        address = client_address(peer, headers, self.trusted_proxies)
        now = time.monotonic()
        tokens, then = self._buckets.pop((prefix, address), (5 * rate, now))
        tokens = min(5 * rate, tokens + (now - then) * rate)
        if tokens < 1:
            self._buckets[(prefix, address)] = (tokens, now)
            wait = max(1, int((1 - tokens) / rate + 0.999))
            await _answer(
                send,
                429,
                f"too many requests from {address}; slow down",
                [(b"retry-after", str(wait).encode())],
            )
            return
        self._buckets[(prefix, address)] = (tokens - 1, now)
        while len(self._buckets) > 100_000:  # bounded: forget the least recent
            self._buckets.popitem(last=False)
        await self.app(scope, receive, send)

"""Per-project authorisation and the access audit, the same in every service.

A request for a project's data needs a role on the project, must come from the project's
networks (when it has any), and, with a machine credential bound to networks, from those
too. Each refusal says which rule refused it. Every access, allowed or refused, is an
``audit.recorded`` event; api keeps them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal

from starlette.requests import Request

from giftcloud_core.bus import Bus
from giftcloud_core.errors import Forbidden, ServiceUnavailable
from giftcloud_core.events import AuditRecorded
from giftcloud_core.logs import correlation_id
from giftcloud_core.network import address_in, client_address
from giftcloud_core.tokens import READ_ROLES, Principal

log = logging.getLogger(__name__)


def request_address(request: Request) -> str:
    """The address the request comes from: the peer, or the forwarded client when the peer
    is a trusted proxy (``GIFTCLOUD_NETWORK__TRUSTED_PROXIES``)."""
    cached = getattr(request.state, "client_address", None)
    if isinstance(cached, str):
        return cached
    trusted = request.app.state.runtime.settings.network.trusted_proxies
    peer = request.client.host if request.client else None
    address = client_address(peer, request.headers, trusted)
    request.state.client_address = address
    return address


def over_tls(request: Request) -> bool:
    """True when the client reached us over HTTPS (directly, or through a trusted proxy that
    says so in X-Forwarded-Proto)."""
    if request.url.scheme == "https":
        return True
    trusted = request.app.state.runtime.settings.network.trusted_proxies
    peer = request.client.host if request.client else ""
    if not trusted or not address_in(peer, trusted):
        return False
    return request.headers.get("x-forwarded-proto", "").split(",")[0].strip() == "https"


def authorize(
    caller: Principal,
    project: str,
    roles: frozenset[str] = READ_ROLES,
    *,
    networks: Sequence[str] = (),
    address: str = "",
) -> str:
    """The caller's role on ``project`` when every rule allows the request; :class:`Forbidden`
    naming the rule otherwise (a role, the project's networks, the credential's networks)."""
    role = caller.require(project, roles)
    if networks and not address_in(address, networks):
        raise Forbidden(
            f"project {project!r} may be reached only from its networks;"
            f" {address or 'an unknown address'} is not among them"
        )
    if caller.networks and not address_in(address, caller.networks):
        raise Forbidden(
            f"{caller.name} may be used only from {', '.join(caller.networks)};"
            f" not from {address or 'an unknown address'}"
        )
    return role


def caller_of(request: Request) -> Principal | None:
    """The principal the request authenticated as, if it did."""
    principal = getattr(request.state, "principal", None)
    return principal if isinstance(principal, Principal) else None


#: where a process that keeps the audit store (api) puts records itself
AuditSink = Callable[[AuditRecorded], Awaitable[None]]


class Auditor:
    """Records audit events: published for api to keep, or, in the process that keeps them,
    put straight into the store (``sink``). A record of an access that was allowed is kept
    before the answer goes out; when it cannot be (the broker away for longer than
    ``patience`` seconds), the request fails (503) rather than go unrecorded."""

    def __init__(self, bus: Bus, sink: AuditSink | None = None, patience: float = 10.0) -> None:
        self.bus = bus
        self.sink = sink
        self.patience = patience

    async def record(
        self,
        request: Request | None,
        action: str,
        *,
        project: str = "",
        target: str = "",
        outcome: Literal["success", "denied", "failure"] = "success",
        detail: str = "",
        actor: str | None = None,
        address: str | None = None,
        required: bool = True,
    ) -> None:
        """Record ``action``; ``required``: raise 503 when the record cannot be kept."""
        if actor is None:
            caller = caller_of(request) if request is not None else None
            actor = caller.name if caller is not None else ""
        if address is None:
            address = request_address(request) if request is not None else ""
        event = AuditRecorded(
            project=project,
            correlation_id=correlation_id.get() or "-",
            actor=actor,
            action=action,
            outcome=outcome,
            target=target[:2000],
            address=address,
            detail=detail[:2000],
        )
        try:
            await self._keep(event, self.patience if required else 0.0)
        except Exception as exc:
            log.error("could not record %s by %s in the audit: %s", action, actor, exc)
            if required:
                raise ServiceUnavailable(
                    "the access could not be recorded in the audit trail; try again"
                ) from exc

    async def _keep(self, event: AuditRecorded, patience: float) -> None:
        if self.sink is not None:
            await self.sink(event)
            return
        deadline = asyncio.get_running_loop().time() + patience
        while True:  # a broker that restarts is back within seconds: wait for it that long
            try:
                await self.bus.publish(event)
                return
            except Exception:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.5)


def safe_next(path: str | None) -> str:
    """Where to go after signing in: a path on this site only (never another origin)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    if any(ord(c) <= 32 or ord(c) == 127 for c in path):  # no header or line tricks
        return "/"
    return path[:500]

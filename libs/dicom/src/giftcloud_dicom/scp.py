"""A DICOM server's lifetime, as ingest's DICOM node and api's query/retrieve run one:
pynetdicom's threaded server, at most so many connections at once from one address, started
on a thread of its own and stopped by letting associations end (then aborting the rest)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import socket
import ssl
import threading
from typing import Any

from pynetdicom import AE
from pynetdicom.presentation import PresentationContext
from pynetdicom.transport import ThreadedAssociationServer

from giftcloud_dicom.pdu_guard import Connections

log = logging.getLogger(__name__)


class GuardedServer(ThreadedAssociationServer):
    """Each connection with TCP_NODELAY (an answer is one small PDU, which our own Nagle
    would hold back; its reads acknowledge at once: pdu_guard); at most so many connections
    at once from one address (``connections``; more are closed at once)."""

    connections = Connections(16)

    def get_request(self) -> tuple[socket.socket, Any]:
        client, address = super().get_request()
        with contextlib.suppress(OSError):
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return client, address

    def verify_request(self, request: Any, client_address: Any) -> bool:
        address = client_address[0] if isinstance(client_address, tuple) else client_address
        return self.connections.admit(str(address))


class Contexts(list[PresentationContext]):
    """A server's presentation contexts, which pynetdicom deep-copies for every association
    it accepts: copied here without building each UID again (pydicom validates every UID it
    makes: 63 ms for the node's 171 contexts of 39 transfer syntaxes, paid by a modality
    that opens an association per instance; 4 ms this way). A context's attributes are
    UIDs, numbers and flags, immutable, but for its list of transfer syntaxes, copied."""

    def __deepcopy__(self, memo: dict[int, Any]) -> list[PresentationContext]:
        copies = []
        for context in self:
            twin = copy.copy(context)
            twin._transfer_syntax = list(context._transfer_syntax)
            copies.append(twin)
        return copies


def acceptor(ae_title: str, idle_seconds: float) -> AE:
    """An AE that accepts associations to any called AE title (its handlers decide whom
    to take), ending one idle ``idle_seconds`` and a negotiation that takes 30 s."""
    ae = AE(ae_title=ae_title)
    ae.network_timeout = idle_seconds
    ae.dimse_timeout = idle_seconds
    ae.acse_timeout = 30
    ae.require_called_aet = False
    return ae


def start_server(
    ae: AE,
    address: tuple[str, int],
    handlers: list[Any],
    connections: Connections,
    name: str,
    setting: str,
    tls: ssl.SSLContext | None = None,
) -> GuardedServer:
    """``ae`` serving on ``address`` in a thread called ``name``; one line naming ``setting``
    when it cannot listen there."""
    try:
        server = ae.make_server(
            address, evt_handlers=handlers, server_class=GuardedServer, ssl_context=tls
        )
    except OSError as exc:
        raise RuntimeError(
            f"the {name} cannot listen on {address[0]}:{address[1]}: {exc.strerror or exc};"
            f" set {setting} (0: none)"
        ) from None
    # as AE.start_server(block=False) does, with the server class above
    assert isinstance(server, GuardedServer)
    server.connections = connections
    server.contexts = Contexts(server.contexts)
    ae._servers.append(server)
    threading.Thread(target=server.serve_forever, name=name, daemon=True).start()
    return server


async def stop_server(server: ThreadedAssociationServer, grace_seconds: float = 10.0) -> None:
    """Take no new association; let those under way end (``grace_seconds``), abort the rest
    and wait for their connections to close."""
    await asyncio.to_thread(server.shutdown)
    for _ in range(int(grace_seconds / 0.05)):
        if not server.active_associations:
            break
        await asyncio.sleep(0.05)
    for assoc in server.active_associations:
        log.warning("aborting the association from %s at stop", assoc.requestor.ae_title)
        await asyncio.to_thread(assoc.abort)
    for _ in range(100):  # aborted, they close their connections
        if not server.active_associations:
            break
        await asyncio.sleep(0.05)

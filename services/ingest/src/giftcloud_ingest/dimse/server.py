"""Ingest's DICOM node: C-ECHO and a C-STORE SCP (PS3.4 Annex A/B, PS3.7, PS3.8), routed to
projects by the called AE title.

pynetdicom serves each association in threads of its own; what touches the database, the
object store or the bus runs on the service's event loop, and the association's thread
waits for it. An association's DIMSE messages are handled one at a time and the sender
waits for each answer, so a C-STORE goes into the project's shared bundle at once
(:class:`~giftcloud_ingest.service.SharedBundles`: alone, or with what other associations
sent meanwhile) and is answered Success (0x0000) only once its object is whole in
``incoming`` and the broker has confirmed its event; a store or broker that fails answers
0xA700 (out of resources) and leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from typing import Any

from giftcloud_core.settings import Settings
from pydicom.uid import AllTransferSyntaxes
from pynetdicom import AE
from pynetdicom.presentation import AllStoragePresentationContexts
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer

from giftcloud_ingest.dimse.associations import Associations, OnStored
from giftcloud_ingest.dimse.pdu_guard import Connections
from giftcloud_ingest.dimse.routing import DicomRoutes
from giftcloud_ingest.receiving.service import Receiver

log = logging.getLogger(__name__)


class _QuickAckSocket(socket.socket):
    """Acknowledges what it receives at once (Linux TCP_QUICKACK, which the kernel clears
    as it goes, so it is set before each read). A sender whose Nagle algorithm is on --
    dcmtk's as Debian builds it, many modalities' -- holds a C-STORE's data set back until
    its command PDU is acknowledged; with delayed ACKs that is 40 ms an instance (measured:
    storescu to a pynetdicom SCP, 44.7 ms an instance without this, 3.7 with it)."""

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        with contextlib.suppress(OSError):
            self.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        return super().recv(bufsize, flags)


class _Server(ThreadedAssociationServer):
    """Each connection with TCP_NODELAY (an answer is one small PDU, which our own Nagle
    would hold back) and, where the system has it, acknowledged at once (above); at most
    so many connections at once from one address (``connections``; more are closed)."""

    connections = Connections(16)

    def verify_request(self, request: Any, client_address: Any) -> bool:
        address = client_address[0] if isinstance(client_address, tuple) else client_address
        return self.connections.admit(str(address))


class DicomNode:
    """The node's lifetime: :meth:`start` on the service's loop, :meth:`stop` at drain."""

    def __init__(
        self,
        settings: Settings,
        receiver: Receiver,
        routes: DicomRoutes,
        on_stored: OnStored | None = None,
    ) -> None:
        self.settings = settings.ingest
        self.routes = routes
        self.connections = Connections(self.settings.dicom_max_connections_per_address)
        self.associations = Associations(settings, receiver, routes, self.connections, on_stored)
        self._server: ThreadedAssociationServer | None = None

    @property
    def port(self) -> int:
        """The port it listens on (the one asked for, or the one given for 0 in tests)."""
        assert self._server is not None
        return int(self._server.server_address[1])

    async def start(self) -> None:
        config = self.settings
        ae = AE(ae_title=config.dicom_ae_title)
        ae.maximum_pdu_size = config.dicom_max_pdu
        # pynetdicom counts connections that have not asked for an association yet; the
        # node counts accepted ones (_requested), and bounds connections per address
        ae.maximum_associations = config.dicom_max_associations * 8
        ae.network_timeout = config.dicom_idle_seconds
        ae.dimse_timeout = config.dicom_idle_seconds
        ae.acse_timeout = 30
        ae.require_called_aet = False  # routed per association (_requested)
        ae.add_supported_context(Verification, AllTransferSyntaxes)
        for context in AllStoragePresentationContexts:
            assert context.abstract_syntax is not None
            ae.add_supported_context(context.abstract_syntax, AllTransferSyntaxes)
        handlers = self.associations.handlers(asyncio.get_running_loop())
        address = (config.dicom_host, config.dicom_port)
        try:
            server = ae.make_server(address, evt_handlers=handlers, server_class=_Server)
        except OSError as exc:
            raise RuntimeError(
                f"the DICOM node cannot listen on {config.dicom_host}:{config.dicom_port}:"
                f" {exc.strerror or exc}; set GIFTCLOUD_INGEST__DICOM_PORT (0: no DICOM node)"
            ) from None
        # as AE.start_server(block=False) does, with the server class above
        assert isinstance(server, _Server)
        server.connections = self.connections
        ae._servers.append(server)
        threading.Thread(target=server.serve_forever, name="dicom-node", daemon=True).start()
        self._server = server
        log.info(
            "DICOM node %s listening on %s:%d", config.dicom_ae_title, config.dicom_host, self.port
        )

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Take no new association; let those under way end (``grace_seconds``), abort the
        rest; wait until every association's upload is recorded."""
        server = self._server
        if server is None:
            return
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
        await self.associations.end_all()
        self._server = None

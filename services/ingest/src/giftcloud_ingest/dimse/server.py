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
import logging

from giftcloud_core.settings import Settings
from giftcloud_dicom.pdu_guard import Connections
from giftcloud_dicom.scp import GuardedServer, acceptor, start_server, stop_server
from pydicom.uid import AllTransferSyntaxes
from pynetdicom.presentation import AllStoragePresentationContexts
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from giftcloud_ingest.dimse.associations import Associations, OnStored
from giftcloud_ingest.dimse.routing import DicomRoutes
from giftcloud_ingest.receiving.service import Receiver

log = logging.getLogger(__name__)


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
        self._server: GuardedServer | None = None

    @property
    def port(self) -> int:
        """The port it listens on (the one asked for, or the one given for 0 in tests)."""
        assert self._server is not None
        return int(self._server.server_address[1])

    async def start(self) -> None:
        config = self.settings
        ae = acceptor(config.dicom_ae_title, config.dicom_idle_seconds)  # routed: _requested
        ae.maximum_pdu_size = config.dicom_max_pdu
        # pynetdicom counts connections that have not asked for an association yet; the
        # node counts accepted ones (_requested), and bounds connections per address
        ae.maximum_associations = config.dicom_max_associations * 8
        ae.add_supported_context(Verification, AllTransferSyntaxes)
        for context in AllStoragePresentationContexts:
            assert context.abstract_syntax is not None
            ae.add_supported_context(context.abstract_syntax, AllTransferSyntaxes)
        handlers = self.associations.handlers(asyncio.get_running_loop())
        address = (config.dicom_host, config.dicom_port)
        server = start_server(
            ae, address, handlers, self.connections, "DICOM node", "GIFTCLOUD_INGEST__DICOM_PORT"
        )
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
        await stop_server(server, grace_seconds)
        await self.associations.end_all()
        self._server = None

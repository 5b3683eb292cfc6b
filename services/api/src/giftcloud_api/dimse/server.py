"""api's DICOM query/retrieve SCP (PS3.4 Annex C; Patient Root and Study Root C-FIND,
C-GET, C-MOVE; C-ECHO) on the catalogue: off unless ``GIFTCLOUD_API__DIMSE_PORT`` is set (a
hub's; never a site's by default), TLS where a certificate is configured."""

from __future__ import annotations

import asyncio
import logging
import ssl

from giftcloud_core.settings import ApiSettings
from giftcloud_dicom.scp import GuardedServer, acceptor, start_server, stop_server
from pydicom.uid import AllTransferSyntaxes
from pynetdicom.presentation import AllStoragePresentationContexts
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from giftcloud_api.dimse.handlers import QueryRetrieve

log = logging.getLogger(__name__)

MODELS = (
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)


def tls_context(settings: ApiSettings) -> ssl.SSLContext | None:
    """TLS where a certificate is configured; client certificates too where a CA is."""
    if settings.dimse_tls_cert is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.dimse_tls_cert, settings.dimse_tls_key)
    if settings.dimse_tls_ca is not None:
        context.load_verify_locations(settings.dimse_tls_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class QueryRetrieveServer:
    """Its lifetime: :meth:`start` on api's loop, :meth:`stop` at drain."""

    def __init__(self, settings: ApiSettings, handlers: QueryRetrieve) -> None:
        self.settings = settings
        self.handlers = handlers
        self._server: GuardedServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    async def start(self) -> None:
        config = self.settings
        if not config.dimse_port:
            return
        ae = acceptor(config.dimse_ae_title, config.dimse_idle_seconds)
        ae.maximum_associations = 64  # who calls is decided by handlers.QueryRetrieve
        ae.add_supported_context(Verification, AllTransferSyntaxes)
        for model in MODELS:
            ae.add_supported_context(model, AllTransferSyntaxes)
        # C-GET: the caller stores what it gets (its SCP role, proposed by role selection)
        for context in AllStoragePresentationContexts:
            assert context.abstract_syntax is not None
            ae.add_supported_context(
                context.abstract_syntax, AllTransferSyntaxes, scu_role=False, scp_role=True
            )
        self._server = start_server(
            ae,
            (config.dimse_host, config.dimse_port),
            self.handlers.handlers(asyncio.get_running_loop()),
            self.handlers.connections,
            "DICOM query/retrieve",
            "GIFTCLOUD_API__DIMSE_PORT",
            tls=tls_context(config),
        )
        log.info(
            "DICOM query/retrieve %s listening on %s:%d%s",
            config.dimse_ae_title,
            config.dimse_host,
            self.port,
            " (TLS)" if config.dimse_tls_cert else "",
        )

    async def stop(self) -> None:
        if self._server is not None:
            await stop_server(self._server)
            self._server = None

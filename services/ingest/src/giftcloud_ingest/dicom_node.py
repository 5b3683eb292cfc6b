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
import queue
import socket
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from giftcloud_core.dicom import NOT_AUTHORIZED, OUT_OF_RESOURCES, PROCESSING_FAILURE, TOO_LARGE
from giftcloud_core.errors import BadRequest, Conflict, NotFound
from giftcloud_core.metrics import INSTANCES
from giftcloud_core.network import address_in, normalise_networks
from giftcloud_core.tokens import Principal
from pydicom.dataset import Dataset
from pydicom.uid import AllTransferSyntaxes
from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.events import Event
from pynetdicom.presentation import AllStoragePresentationContexts
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from giftcloud_ingest.models import DicomRoute, KnownProject
from giftcloud_ingest.pdu_guard import OTHER_PDU_LIMIT, Connections, ended, guard
from giftcloud_ingest.service import (
    Failed,
    IngestService,
    Stored,
    UploadSession,
    check_instance,
    split_list,
)

#: told of each instance stored: (project, what it is, the part it became)
OnStored = Callable[[str, Stored, str], Awaitable[None]]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: A-ASSOCIATE-RJ (PS3.8 §9.3.4): rejected-permanent by the service user, and why
CALLING_NOT_RECOGNISED, CALLED_NOT_RECOGNISED, NO_REASON = 0x03, 0x07, 0x01
#: how long an association's thread waits for its work on the event loop
WAIT_SECONDS = 300.0


def ae_title_problem(text: str) -> str | None:
    """What makes ``text`` no AE title (PS3.5 §6.2, VR AE), or None: at most 16 characters
    of the default repertoire, no backslash, no control character, not only spaces."""
    if not text.strip(" "):
        return "an AE title may not be empty or only spaces"
    if len(text) > 16:
        return f"an AE title has at most 16 characters; {text[:20]!r} has {len(text)}"
    if "\\" in text:
        return "an AE title may not hold a backslash"
    if any(ord(c) < 0x20 or ord(c) > 0x7E for c in text):
        return "an AE title holds printable ASCII only (no control or non-ASCII character)"
    return None


def _lines(text: str) -> list[str]:
    return [line for line in text.split("\n") if line]


@dataclass(frozen=True)
class Route:
    project: str
    ae_title: str
    calling_ae_titles: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()

    @classmethod
    def of(cls, row: DicomRoute) -> Route:
        return cls(
            row.project,
            row.ae_title,
            tuple(_lines(row.calling_ae_titles)),
            tuple(split_list(row.networks)),
        )

    def public(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "ae_title": self.ae_title,
            "calling_ae_titles": list(self.calling_ae_titles),
            "networks": list(self.networks),
        }


@dataclass(frozen=True)
class Refusal:
    diagnostic: int
    reason: str


class DicomRoutes:
    """The node's routes: which called AE title stores into which project, from whom."""

    def __init__(self, service: IngestService) -> None:
        self.db = service.db

    async def get(self, project: str) -> Route:
        async with self.db.session() as session:
            row = await session.get(DicomRoute, project)
        if row is None:
            raise NotFound(f"project {project!r} has no DICOM AE title")
        return Route.of(row)

    async def put(
        self,
        project: str,
        ae_title: str,
        calling_ae_titles: list[str],
        networks: list[str],
        by: str,
    ) -> Route:
        """Set the project's route; 400 naming what is wrong, 409 if the AE title is taken."""
        title = ae_title.strip(" ")
        for value in [ae_title, *calling_ae_titles]:
            if (problem := ae_title_problem(value)) is not None:
                raise BadRequest(f'AE title "{value[:20]}": {problem}')
        callers = list(dict.fromkeys(t.strip(" ") for t in calling_ae_titles))
        try:
            cidrs = list(normalise_networks(networks))
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        row = DicomRoute(
            project=project,
            ae_title=title,
            calling_ae_titles="\n".join(callers),
            networks=",".join(cidrs),
            updated_by=by,
            updated_at=datetime.now(UTC),
        )
        try:
            async with self.db.session() as session:
                await session.merge(row)
        except IntegrityError:
            raise AeTitleTaken(f"the AE title {title!r} routes to another project") from None
        return Route(project, title, tuple(callers), tuple(cidrs))

    async def delete(self, project: str) -> None:
        async with self.db.session() as session:
            row = await session.get(DicomRoute, project)
            if row is None:
                raise NotFound(f"project {project!r} has no DICOM AE title")
            await session.delete(row)

    async def admit(self, called: str, calling: str, address: str) -> Route | Refusal:
        """The route an association from ``calling`` at ``address`` to ``called`` takes, or
        why it is refused."""
        async with self.db.session() as session:
            row = (
                await session.exec(select(DicomRoute).where(DicomRoute.ae_title == called))
            ).first()
            known = await session.get(KnownProject, row.project) if row is not None else None
        if row is None:
            return Refusal(CALLED_NOT_RECOGNISED, f"called AE title {called!r} not recognised")
        if known is None:
            return Refusal(
                CALLED_NOT_RECOGNISED,
                f"called AE title {called!r} routes to project {row.project!r}, which is gone",
            )
        route = Route.of(row)
        # the network first: an outsider learns nothing of which calling titles are valid
        project_networks = split_list(known.networks)
        for allowed, whose in ((route.networks, "the AE title"), (project_networks, "the project")):
            if allowed and not address_in(address, allowed):
                return Refusal(
                    NO_REASON, f"{address} is not among the networks {whose} {called!r} allows"
                )
        if route.calling_ae_titles and calling not in route.calling_ae_titles:
            return Refusal(
                CALLING_NOT_RECOGNISED,
                f"calling AE title {calling!r} may not send to {called!r}",
            )
        return route


class AeTitleTaken(Conflict):
    pass


@dataclass
class _Association:
    """An accepted association: the project it stores into and, once it stores, its upload."""

    route: Route
    calling: str
    address: str
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    upload: UploadSession | None = None
    ended: bool = False


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

    def __init__(self, service: IngestService, on_stored: OnStored | None = None) -> None:
        self.service = service
        self.on_stored = on_stored
        self.routes = DicomRoutes(service)
        self.settings = service.settings.ingest
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: ThreadedAssociationServer | None = None
        self._associations: dict[Association, _Association] = {}
        self._lock = threading.Lock()
        self._ending: set[asyncio.Task[None]] = set()
        self.connections = Connections(self.settings.dicom_max_connections_per_address)

    @property
    def port(self) -> int:
        """The port it listens on (the one asked for, or the one given for 0 in tests)."""
        assert self._server is not None
        return int(self._server.server_address[1])

    async def start(self) -> None:
        config = self.settings
        self._loop = asyncio.get_running_loop()
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
        handlers: list[evt.EventHandlerType] = [
            (evt.EVT_CONN_OPEN, self._opened),
            (evt.EVT_REQUESTED, self._requested),
            (evt.EVT_C_ECHO, self._echo),
            (evt.EVT_C_STORE, self._store),
            (evt.EVT_CONN_CLOSE, self._closed),
        ]
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
        await asyncio.sleep(0)  # what closing threads scheduled runs
        with self._lock:
            left = list(self._associations.values())
            self._associations.clear()
        for state in left:
            self._begin_end(state)
        if self._ending:
            await asyncio.gather(*list(self._ending), return_exceptions=True)
        self._server = None

    # --- in the associations' threads ---------------------------------------------------

    def _opened(self, event: Event) -> None:
        """EVT_CONN_OPEN, before the association's threads start: its PDUs are read through
        the guard (pdu_guard.py), its reactor waits on its message queue (below)."""
        limits = self.service.settings.limits
        p_data_limit = self.settings.dicom_max_pdu or limits.max_instance_bytes + OTHER_PDU_LIMIT
        guard(event.assoc, p_data_limit, self.settings.dicom_idle_seconds, self.connections)
        _waits_on_messages(event)

    def _wait(self, work: Coroutine[Any, Any, T]) -> T:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(WAIT_SECONDS)

    def _requested(self, event: Event) -> None:
        """EVT_REQUESTED: accept the association only where the called AE title routes,
        from a calling AE title and an address its project allows."""
        assoc = event.assoc
        request = assoc.requestor.primitive
        assert request is not None  # EVT_REQUESTED: the A-ASSOCIATE-RQ has arrived
        called = str(request.called_ae_title).strip(" ")
        calling = str(request.calling_ae_title).strip(" ")
        address = str(assoc.requestor.address)
        if called == self.settings.dicom_ae_title:
            return  # the node itself: verification only (_store refuses instances)
        with self._lock:
            accepted = len(self._associations)
        if accepted >= self.settings.dicom_max_associations:
            log.warning(
                "rejected an association from %s at %s to %s: %d associations already",
                calling,
                address,
                called,
                accepted,
            )
            assoc.acse.send_reject(0x02, 0x03, 0x02)  # transient, provider: local limit
            assoc.kill()
            return
        try:
            found = self._wait(self.routes.admit(called, calling, address))
        except Exception:
            log.exception("could not look up the route of %r", called)
            found = Refusal(NO_REASON, "the routes could not be read")
            result = 0x02  # rejected-transient: try again later
        else:
            result = 0x01
        if isinstance(found, Refusal):
            log.warning(
                "rejected an association from %s at %s to %s: %s",
                calling,
                address,
                called,
                found.reason,
            )
            assoc.acse.send_reject(result, 0x01, found.diagnostic)
            # as pynetdicom's own rejection does: wait until the A-ASSOCIATE-RJ is out and
            # the peer closed (or the ARTIM timer ran out), then end the association
            assoc.kill()
            return
        with self._lock:
            self._associations[assoc] = _Association(found, calling, address)
        log.info(
            "association from %s at %s to %s (project %s)", calling, address, called, found.project
        )

    def _echo(self, event: Event) -> int:
        return 0x0000

    def _store(self, event: Event) -> Dataset:
        with self._lock:
            state = self._associations.get(event.assoc)
        if state is None:
            return _status(
                PROCESSING_FAILURE,
                f"{self.settings.dicom_ae_title} answers C-ECHO only: call a project's AE title",
            )
        data = event.encoded_dataset(include_meta=True)
        service = self.service
        limit = service.settings.limits.max_instance_bytes
        if len(data) > limit:
            INSTANCES.labels("ingest", "invalid").inc()
            return _status(TOO_LARGE, f"instance of {len(data)} bytes; the limit is {limit}")
        checked = check_instance(
            data,
            None,
            service.settings.limits.inflated_ceiling,
            service.admission(state.route.project),
        )
        # an instance a C-MOVE sends names the move's originator (PS3.7 9.1.1.1): only those
        # can belong to a retrieval
        moved = bool(getattr(event.request, "MoveOriginatorApplicationEntityTitle", None))
        try:
            outcome = self._wait(self._keep(state, data, checked, moved))
        except Exception:
            log.exception("could not store an instance from %s", state.calling)
            return _status(OUT_OF_RESOURCES, "the instance could not be stored; try again")
        if isinstance(outcome, Failed):
            log.info(
                "refused an instance from %s (status 0x%04X): %s",
                state.calling,
                outcome.reason,
                outcome.message,
            )
            return _status(outcome.reason, outcome.message)
        return _status(0x0000, "")

    def _closed(self, event: Event) -> None:
        ended(event.assoc)
        with self._lock:
            state = self._associations.pop(event.assoc, None)
        if state is None or self._loop is None or self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._begin_end, state)

    # --- on the loop ------------------------------------------------------------------

    def _begin_end(self, state: _Association) -> None:
        task = asyncio.create_task(self._end(state))
        self._ending.add(task)
        task.add_done_callback(self._ending.discard)

    async def _keep(self, state: _Association, data: bytes, checked: Any, moved: bool) -> Any:
        async with state.lock:
            if state.ended:
                return Failed("", "", OUT_OF_RESOURCES, "the association is ending")
            # the route as it is now: removed, moved to another project or narrowed since the
            # association began, it stores nothing more
            now = await self.routes.admit(state.route.ae_title, state.calling, state.address)
            if isinstance(now, Refusal) or now.project != state.route.project:
                why = now.reason if isinstance(now, Refusal) else "it routes to another project"
                return Failed(
                    "",
                    "",
                    NOT_AUTHORIZED,
                    f"the route changed: {why}; nothing more is stored from this association",
                )
            if state.upload is None:
                state.upload = await self.service.open_upload(
                    state.route.project,
                    Principal(subject=f"dicom:{state.calling}"),
                    source="dimse",
                    sender=f"dicom:{state.calling}@{state.address}",
                )
            outcome = await state.upload.add_checked(data, checked)
            if moved and isinstance(outcome, Stored) and self.on_stored is not None:
                upload_id = state.upload.result.upload_id
                name = f"{state.route.project}/{upload_id}/{outcome.index:06d}.dcm"
                await self.on_stored(state.route.project, outcome, name)
            return outcome

    async def _end(self, state: _Association) -> None:
        async with state.lock:
            state.ended = True
            if state.upload is None:
                return
            result = await state.upload.finish()
        log.info(
            "association from %s at %s ended: upload %s, %d stored, %d refused",
            state.calling,
            state.address,
            result.upload_id,
            len(result.stored),
            len(result.failed),
        )


#: how long an association's reactor waits for a DIMSE message before it looks at the rest
#: (a release, an abort, its timers)
REACTOR_WAIT_SECONDS = 0.02


def _waits_on_messages(event: Event) -> None:
    """Before the association's threads start: its reactor waits on the
    queue of decoded DIMSE messages instead of looking at it every millisecond (pynetdicom
    3 polls: eight idle associations cost 33 % of a core, 19 % with this, no slower).
    Left as it is if pynetdicom's inside is not what this expects."""
    dimse = getattr(event.assoc, "dimse", None)
    messages = getattr(dimse, "msg_queue", None)
    if dimse is None or not isinstance(messages, queue.Queue):
        return

    def get_msg(block: bool = False) -> tuple[Any, Any]:
        try:
            found: tuple[Any, Any] = messages.get(timeout=REACTOR_WAIT_SECONDS)
        except queue.Empty:
            return None, None
        return found

    dimse.get_msg = get_msg


def _status(code: int, comment: str) -> Dataset:
    status = Dataset()
    status.Status = code
    if comment:
        status.ErrorComment = comment[:64]
    return status

"""An association's life at the node, in pynetdicom's threads and on the service's loop:
admitted by its route (EVT_REQUESTED), each C-STORE checked and kept in the project's
upload (answered only once whole in ``incoming`` and announced), its upload finished when
it ends."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from giftcloud_core.metrics import INSTANCES
from giftcloud_core.settings import Settings
from giftcloud_core.tokens import Principal
from giftcloud_dicom.instance import (
    CANNOT_UNDERSTAND,
    NOT_AUTHORIZED,
    OUT_OF_RESOURCES,
    TOO_LARGE,
    error_comment,
)
from giftcloud_dicom.pdu_guard import OTHER_PDU_LIMIT, Connections, ended, guard
from giftcloud_dicom.reactors import wait_for_work
from pydicom.dataset import Dataset
from pynetdicom import evt
from pynetdicom.association import Association
from pynetdicom.events import Event

from giftcloud_ingest.dimse.routing import NO_REASON, DicomRoutes, Refusal, Route
from giftcloud_ingest.receiving.checks import Failed, Stored
from giftcloud_ingest.receiving.records import item_name
from giftcloud_ingest.receiving.service import Receiver
from giftcloud_ingest.receiving.uploads import UploadSession

#: told of each instance stored: (project, what it is, the part it became)
OnStored = Callable[[str, Stored, str], Awaitable[None]]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: how long an association's thread waits for its work on the event loop
WAIT_SECONDS = 300.0


@dataclass
class _Association:
    """An accepted association: the project it stores into and, once it stores, its upload."""

    route: Route
    calling: str
    address: str
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    upload: UploadSession | None = None
    ended: bool = False


class Associations:
    """The node's associations: the handlers pynetdicom calls, and their work on the loop."""

    def __init__(
        self,
        settings: Settings,
        receiver: Receiver,
        routes: DicomRoutes,
        connections: Connections,
        on_stored: OnStored | None = None,
    ) -> None:
        self.settings = settings.ingest
        self.limits = settings.limits
        self.receiver = receiver
        self.routes = routes
        self.connections = connections
        self.on_stored = on_stored
        self._loop: asyncio.AbstractEventLoop | None = None
        self._associations: dict[Association, _Association] = {}
        self._lock = threading.Lock()
        self._ending: set[asyncio.Task[None]] = set()

    def handlers(self, loop: asyncio.AbstractEventLoop) -> list[evt.EventHandlerType]:
        self._loop = loop
        return [
            (evt.EVT_CONN_OPEN, self._opened),
            (evt.EVT_REQUESTED, self._requested),
            (evt.EVT_C_ECHO, self._echo),
            (evt.EVT_C_STORE, self._store),
            (evt.EVT_CONN_CLOSE, self._closed),
        ]

    async def end_all(self) -> None:
        """Every association left ends: its upload finished and recorded."""
        await asyncio.sleep(0)  # what closing threads scheduled runs
        with self._lock:
            left = list(self._associations.values())
            self._associations.clear()
        for state in left:
            self._begin_end(state)
        if self._ending:
            await asyncio.gather(*list(self._ending), return_exceptions=True)

    def _opened(self, event: Event) -> None:
        """EVT_CONN_OPEN, before the association's threads start: its PDUs are read through
        the guard (pdu_guard.py), its threads wait for work rather than poll (reactors.py)."""
        p_data_limit = (
            self.settings.dicom_max_pdu or self.limits.max_instance_bytes + OTHER_PDU_LIMIT
        )
        guard(event.assoc, p_data_limit, self.settings.dicom_idle_seconds, self.connections)
        wait_for_work(event.assoc)

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
                CANNOT_UNDERSTAND,
                f"{self.settings.dicom_ae_title} answers C-ECHO only: call a project's AE title",
            )
        data = event.encoded_dataset(include_meta=True)
        limit = self.limits.max_instance_bytes
        if len(data) > limit:
            INSTANCES.labels("ingest", "invalid").inc()
            return _status(TOO_LARGE, f"instance of {len(data)} bytes; the limit is {limit}")
        checked = self.receiver.check(data, state.route.project)
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
                state.upload = await self.receiver.open_upload(
                    state.route.project,
                    Principal(subject=f"dicom:{state.calling}"),
                    source="dimse",
                    sender=f"dicom:{state.calling}@{state.address}",
                )
            outcome = await state.upload.add_checked(data, checked)
            if moved and isinstance(outcome, Stored) and self.on_stored is not None:
                upload_id = state.upload.result.upload_id
                name = item_name(state.route.project, upload_id, outcome.index)
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


def _status(code: int, comment: str) -> Dataset:
    status = Dataset()
    status.Status = code
    if comment:
        status.ErrorComment = error_comment(comment)
    return status

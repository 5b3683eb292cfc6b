"""One handler per DIMSE event of api's query/retrieve SCP (as pynetdicom's qrscp example
splits them): who an association acts as (EVT_REQUESTED, EVT_USER_ID), C-ECHO, C-FIND,
C-GET and C-MOVE. pynetdicom runs them on an association's thread; what reads the
catalogue, the archive or the audit trail runs on api's event loop and the thread waits.
Every search and retrieval is in the audit trail before its first answer goes out."""

from __future__ import annotations

import asyncio
import io
import logging
import threading
from collections import Counter
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pydicom
from giftcloud_core.access import Auditor
from giftcloud_core.errors import GiftcloudError
from giftcloud_core.tokens import Principal
from giftcloud_dicom.pdu_guard import Connections, ended, guard
from giftcloud_dicom.reactors import wait_for_work
from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import evt
from pynetdicom.events import Event
from pynetdicom.presentation import build_context
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
)

from giftcloud_api.catalogue.service import CatalogueService
from giftcloud_api.dicomweb.delivery import Delivery
from giftcloud_api.dimse.callers import Callers
from giftcloud_api.dimse.query import MOST, IdentifierError, answer, asked, patients, searched
from giftcloud_api.models import Instance

log = logging.getLogger(__name__)
T = TypeVar("T")
#: how long an association's thread waits for api's loop
WAIT_SECONDS = 300.0
_PATIENT_ROOT = {
    str(PatientRootQueryRetrieveInformationModelFind),
    str(PatientRootQueryRetrieveInformationModelGet),
    str(PatientRootQueryRetrieveInformationModelMove),
}
#: the keys that choose what C-GET and C-MOVE send (PS3.4 C.4.2.2.1, C.4.3.2.1)
_UNIQUE_KEYS = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
#: a C-MOVE's sub-associations propose these for every SOP class they send
_SENT_AS: list[str | UID] = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]


class TooMany(Exception):
    """More matches than one answer gives (:data:`MOST`)."""


#: the failure each refusal answers (PS3.4 C.4.1.1.4): the identifier cannot be read; out
#: of resources
_STATUS: dict[type[Exception], int] = {IdentifierError: 0xA900, TooMany: 0xA700}


def _failed(status: int, comment: str) -> Dataset:
    ds = Dataset()
    ds.Status = status
    ds.ErrorComment = comment[:64]
    return ds


class QueryRetrieve:
    def __init__(
        self,
        service: CatalogueService,
        delivery: Delivery,
        callers: Callers,
        audit: Auditor,
        connections: Connections,
    ) -> None:
        self.service = service
        self.delivery = delivery
        self.callers = callers
        self.audit = audit
        self.connections = connections
        self.settings = service.settings.api
        self._loop: asyncio.AbstractEventLoop | None = None
        self._acting: dict[int, Principal] = {}
        self._lock = threading.Lock()

    def handlers(self, loop: asyncio.AbstractEventLoop) -> list[Any]:
        self._loop = loop
        return [
            (evt.EVT_CONN_OPEN, self._opened),
            (evt.EVT_CONN_CLOSE, self._closed),
            (evt.EVT_REQUESTED, self._requested),
            (evt.EVT_USER_ID, self._user_id),
            (evt.EVT_C_ECHO, lambda event: 0x0000),
            (evt.EVT_C_FIND, self._find),
            (evt.EVT_C_GET, self._get),
            (evt.EVT_C_MOVE, self._move),
        ]

    def _wait(self, work: Coroutine[Any, Any, T]) -> T:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(WAIT_SECONDS)

    # --- who the association acts as --------------------------------------------------

    def _opened(self, event: Event) -> None:
        """Its PDUs read through the guard: requests are small; what it sends is not read.
        Its threads wait for work rather than poll (reactors.py)."""
        guard(event.assoc, 1024 * 1024, self.settings.dimse_idle_seconds, self.connections)
        wait_for_work(event.assoc)

    def _closed(self, event: Event) -> None:
        ended(event.assoc)
        with self._lock:
            self._acting.pop(id(event.assoc), None)

    def _requested(self, event: Event) -> None:
        """An association without a user identity acts as its registered calling AE title
        (from its registered address); any other is rejected: calling AE title unknown."""
        assoc = event.assoc
        if assoc.requestor.user_identity is not None:
            return  # EVT_USER_ID decides
        calling = _calling(event)
        address = str(assoc.requestor.address)
        try:
            acting = self._wait(self.callers.acting_for(calling, address))
        except GiftcloudError as exc:
            log.warning("rejected an association from %s at %s: %s", calling, address, exc.message)
            self._wait(self._refused(calling, address, exc.message))
            assoc.acse.send_reject(0x01, 0x01, 0x03)  # permanent, user: calling AE title
            assoc.kill()
            return
        with self._lock:
            self._acting[id(assoc)] = acting

    def _user_id(self, event: Event) -> tuple[bool, bytes | None]:
        assoc = event.assoc
        address = str(assoc.requestor.address)
        fields: Any = event  # EVT_USER_ID's own attributes
        kind, primary, secondary = fields.user_id_type, fields.primary_field, fields.secondary_field
        try:
            acting = self._wait(self.callers.identified(int(kind), primary, secondary or b""))
        except GiftcloudError as exc:
            calling = _calling(event)
            log.warning("rejected a user identity from %s at %s: %s", calling, address, exc.message)
            self._wait(self._refused(calling, address, exc.message))
            return False, None
        with self._lock:
            self._acting[id(assoc)] = acting
        return True, b""

    async def _refused(self, calling: str, address: str, why: str) -> None:
        await self.audit.record(
            None, "dimse.associate", actor=calling.strip(), address=address,
            outcome="denied", detail=why, required=False,
        )  # fmt: skip

    def _caller(self, event: Event) -> tuple[Principal, str]:
        with self._lock:
            acting = self._acting[id(event.assoc)]
        return acting, str(event.assoc.requestor.address)

    # --- C-FIND ------------------------------------------------------------------------

    def _find(self, event: Event) -> Iterator[tuple[int | Dataset, Dataset | None]]:
        acting, address = self._caller(event)
        model = str(event.request.AffectedSOPClassUID)
        try:
            question = asked(event.identifier)
            if question.level == "PATIENT" and model not in _PATIENT_ROOT:
                raise IdentifierError("PATIENT level is Patient Root's, not Study Root's")
            answers = self._wait(self._answers(acting, address, question, model))
        except IdentifierError as exc:
            yield _failed(0xA900, str(exc)), None
            return
        except TooMany as exc:
            yield _failed(0xA700, str(exc)), None  # refused: out of resources
            return
        except GiftcloudError as exc:
            yield _failed(0xC000, exc.message), None
            return
        for ds in answers:
            if event.is_cancelled:
                yield 0xFE00, None
                return
            yield 0xFF00, ds

    async def _answers(
        self, acting: Principal, address: str, question: Any, model: str
    ) -> list[Dataset]:
        projects = await self.service.readable(acting, address)
        found: list[Dataset] = []
        per_project: Counter[str] = Counter()
        async for project, one, search in searched(
            self.service.db, projects, question, self.settings.qido_max_limit
        ):
            found.append(answer(one, search, question, self.settings.dimse_ae_title))
            per_project[project] += 1
        if question.level == "PATIENT":
            found = patients(found)
        await self._recorded(
            acting, address, "dimse.find", f"{question.level} {model}", per_project,
            f"result(s) for {_shown(question.params)}",
        )  # fmt: skip
        if len(found) > MOST:
            raise TooMany(f"more than {MOST} matches: narrow the query")
        return found

    async def _recorded(
        self, acting: Principal, address: str, action: str, target: str,
        per_project: Counter[str], what: str,
    ) -> None:  # fmt: skip
        """One record per project the answer draws on (none found: one, of no project)."""
        for project, count in sorted(per_project.items()) or [("", 0)]:
            await self.audit.record(
                None, action, project=project, actor=acting.name, address=address,
                target=target, detail=f"{count} {what}",
            )  # fmt: skip

    # --- C-GET and C-MOVE --------------------------------------------------------------

    async def _selected(
        self, acting: Principal, address: str, identifier: Dataset, action: str, target: str
    ) -> list[Instance]:
        """The instances an identifier names (by its unique keys) in the projects the caller
        may read; recorded as ``action``."""
        keys = Dataset()
        keys.QueryRetrieveLevel = "IMAGE"
        for keyword in _UNIQUE_KEYS:
            value = identifier.get(keyword)
            if value not in (None, ""):
                setattr(keys, keyword, value)
        if len(keys) == 1:
            raise IdentifierError("no unique key (StudyInstanceUID, SeriesInstanceUID, ...)")
        question = asked(keys)
        projects = await self.service.readable(acting, address)
        instances: list[Instance] = []
        per_project: Counter[str] = Counter()
        async for project, one, _ in searched(
            self.service.db, projects, question, self.settings.qido_max_limit
        ):
            assert one.instance is not None  # an IMAGE-level search
            instances.append(one.instance)
            per_project[project] += 1
        await self._recorded(
            acting, address, action, target, per_project,
            f"instance(s) for {_shown(question.params)}",
        )  # fmt: skip
        if len(instances) > MOST:
            raise TooMany(f"more than {MOST} instances: retrieve by study or series")
        return instances

    def _dataset(self, instance: Instance, accepted: set[str] | None) -> Dataset:
        """The instance as stored where the peer takes that, else Explicit VR Little Endian
        (transcoded through WADO-RS's cache; pynetdicom re-encodes it as Implicit VR where
        that is what the peer took)."""
        stored = instance.transfer_syntax_uid
        syntax = None if accepted is not None and stored in accepted else ExplicitVRLittleEndian
        if syntax == stored:
            syntax = None
        data = self._wait(self.delivery.file(instance, syntax))
        return pydicom.dcmread(io.BytesIO(data))

    def _get(self, event: Event) -> Iterator[Any]:
        acting, address = self._caller(event)
        try:
            instances = self._wait(
                self._selected(acting, address, event.identifier, "dimse.get", "C-GET")
            )
        except (IdentifierError, TooMany, GiftcloudError) as exc:
            why = exc.message if isinstance(exc, GiftcloudError) else str(exc)
            yield 0
            yield _failed(_STATUS.get(type(exc), 0xC000), why), None
            return
        offered: dict[str, set[str]] = {}
        for context in event.assoc.accepted_contexts:
            if context.abstract_syntax is not None:
                offered.setdefault(str(context.abstract_syntax), set()).add(
                    str(context.transfer_syntax[0])
                )
        yield len(instances)
        for instance in instances:
            if event.is_cancelled:
                yield 0xFE00, None
                return
            yield 0xFF00, self._dataset(instance, offered.get(instance.sop_class_uid, set()))

    def _move(self, event: Event) -> Iterator[Any]:
        acting, address = self._caller(event)
        named = event.move_destination
        destination = (
            named.decode("ascii", "replace") if isinstance(named, bytes) else str(named)
        ).strip()
        try:
            host, port = self._wait(self.callers.destination(acting, destination))
            instances = self._wait(
                self._selected(
                    acting, address, event.identifier, "dimse.move", f"C-MOVE to {destination}"
                )
            )
        except GiftcloudError as exc:
            log.warning("refused a C-MOVE to %s: %s", destination, exc.message)
            yield None, None  # 0xA801: move destination unknown
            return
        except (IdentifierError, TooMany) as exc:
            log.warning("refused a C-MOVE: %s", exc)
            yield host, port
            yield 0
            yield _failed(_STATUS[type(exc)], str(exc)), None
            return
        classes = sorted({i.sop_class_uid for i in instances})[:128]
        yield host, port, {"contexts": [build_context(c, _SENT_AS) for c in classes]}
        yield len(instances)
        for instance in instances:
            if event.is_cancelled:
                yield 0xFE00, None
                return
            yield 0xFF00, self._dataset(instance, None)


def _calling(event: Event) -> str:
    request = event.assoc.requestor.primitive
    return str(request.calling_ae_title).strip() if request is not None else ""


def _shown(params: list[tuple[str, str]]) -> str:
    matched = [f"{name}={value}" for name, value in params if name != "includefield"]
    return ", ".join(matched)[:400] or "everything"

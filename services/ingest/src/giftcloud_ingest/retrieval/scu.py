"""The PACS side of a retrieval, as a DICOM SCU: C-FIND at study, series and image level,
C-MOVE of a study or one instance; and C-STORE of a result delivered back to the hospital.
Blocking calls, in threads of their own."""

from __future__ import annotations

import asyncio
import io
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from giftcloud_dicom.uid import uid_problem
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
)

from giftcloud_ingest.models import RemoteNode

T = TypeVar("T")


class RemoteError(Exception):
    """The remote node refused or failed; the message says how."""


#: what a C-FIND/C-MOVE status means (PS3.4 C.4.1.1.4, C.4.2.1.5), and what to do about it
_MEANINGS: dict[int, str] = {
    0x0000: "success",
    0xFE00: "cancelled",
    0xB000: "finished with failures: some instances could not be sent",
    0xA700: "the PACS is out of resources",
    0xA701: "the PACS is out of resources: it could not count the matches",
    0xA702: "the PACS is out of resources: it could not send the instances",
    0xA801: "the PACS does not know the destination: register the project's AE title there",
    0xA900: "the PACS could not understand the query (identifier does not match SOP class)",
    0x0122: "the PACS does not support this query/retrieve model",
    0x0124: "the PACS refused: not authorised",
}
_UNABLE = (
    "the PACS was unable to process the request: usually it does not know the project's AE"
    " title with this node's address and port, or cannot reach it"
)


def meaning(code: int) -> str:
    """A status code in words, with the likely cause where there is one."""
    if code in _MEANINGS:
        return _MEANINGS[code]
    if code in (0xFF00, 0xFF01):
        return "still pending"
    if 0xC000 <= code <= 0xCFFF:
        return _UNABLE
    if 0xA700 <= code <= 0xA7FF:
        return _MEANINGS[0xA700]
    return "a status PS3.4 does not define for this request"


def status_text(status: Dataset | None) -> str:
    """The final answer of a request, in words first: what it means, its code, its comment."""
    if status is None or "Status" not in status:
        return "no answer from the PACS (the association was lost or timed out)"
    code = int(status.Status)
    if code in (0xFF00, 0xFF01):  # the last answer was "pending": the move was cut off
        done = int(status.get("NumberOfCompletedSuboperations", 0) or 0)
        left = int(status.get("NumberOfRemainingSuboperations", 0) or 0)
        return (
            f"the PACS stopped answering during the move ({done} sent, {left} still to send):"
            " it may have crashed or closed the association; resume to try again"
        )
    return _said(meaning(code), code, status)


#: what a C-STORE status means (PS3.4 B.2.3); the first four stored the instance
_STORE_MEANINGS: dict[int, str] = {
    0x0000: "success",
    0xB000: "stored, with some elements coerced",
    0xB006: "stored, with some elements discarded",
    0xB007: "stored, though the data set does not match its SOP class",
    0x0122: "the node does not take this kind of instance (SOP class not supported)",
    0x0124: "the node refused it: not authorised",
}
STORED = frozenset({0x0000, 0xB000, 0xB006, 0xB007})


def store_status_text(status: Dataset | None) -> str:
    """A C-STORE answer in words first: what it means, its code, its comment."""
    if status is None or "Status" not in status:
        return "no answer from the node (the association was lost or timed out)"
    code = int(status.Status)
    if code in _STORE_MEANINGS:
        text = _STORE_MEANINGS[code]
    elif 0xA700 <= code <= 0xA7FF:
        text = "the node is out of resources"
    elif 0xA900 <= code <= 0xA9FF:
        text = "the node refused it: the data set does not match its SOP class"
    elif 0xC000 <= code <= 0xCFFF:
        text = "the node cannot understand it"
    else:
        text = "a status PS3.4 does not define for C-STORE"
    return _said(text, code, status)


def _said(text: str, code: int, status: Dataset) -> str:
    comment = status.get("ErrorComment")
    said = f"{text} (0x{code:04X})"
    return f"{said}: {comment}" if comment else said


def _rejection(assoc: Any) -> str:
    """Why a peer rejected an association, as PS3.8 says it (result, source, reason)."""
    primitive = getattr(assoc.acceptor, "primitive", None)
    if primitive is None:
        return "no reason given"
    reason = str(getattr(primitive, "reason_str", "") or "no reason given")
    source = str(getattr(primitive, "source_str", "") or "")
    hints = {
        "Called AE title not recognised": "the PACS does not know its own AE title as given",
        "Calling AE title not recognised": "the PACS does not know this node's AE title:"
        " register it there",
    }
    hint = next((h for text, h in hints.items() if text.lower() in reason.lower()), "")
    said = f"{reason} ({source})" if source else reason
    return f"{said}: {hint}" if hint else said


class Scu:
    def __init__(self, ae_title: str) -> None:
        self.ae_title = ae_title
        #: threads of their own for the blocking C-FIND/C-MOVE calls: a move may take many
        #: minutes, and asyncio's default executor is what STOW-RS checks its parts in
        self._dicom = ThreadPoolExecutor(max_workers=16, thread_name_prefix="retrieval")
        self._bounds: dict[str, asyncio.Semaphore] = {}

    def bound(self, node: RemoteNode) -> asyncio.Semaphore:
        """At most ``max_concurrent`` associations with one node at once."""
        found = self._bounds.get(node.name)
        if found is None:
            found = self._bounds[node.name] = asyncio.Semaphore(max(1, node.max_concurrent))
        return found

    def forget(self, node: str) -> None:
        """A node's settings changed: its bound with them, from its next study."""
        self._bounds.pop(node, None)

    def shutdown(self) -> None:
        self._dicom.shutdown(wait=False, cancel_futures=True)

    async def find(self, node: RemoteNode, keys: dict[str, str]) -> list[tuple[str, int]]:
        return await self._in_thread(self._find, node, keys)

    async def instances(self, node: RemoteNode, study_uid: str) -> list[tuple[str, str]]:
        return await self._in_thread(self._instances, node, study_uid)

    async def move(
        self,
        node: RemoteNode,
        destination: str,
        study_uid: str,
        instance: tuple[str, str] | None = None,
    ) -> Dataset | None:
        return await self._in_thread(self._move, node, destination, study_uid, instance)

    async def store(self, node: RemoteNode, files: list[bytes]) -> list[Dataset | None]:
        """Send instances to the node on one association; each one's answer (None when the
        association broke before it)."""
        return await self._in_thread(self._store, node, files)

    async def _in_thread(self, work: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._dicom, work, *args)

    def _associate(self, node: RemoteNode, *contexts: str | tuple[str, list[str]]) -> Any:
        """An association with the node for ``contexts`` (an abstract syntax, with its
        transfer syntaxes or pynetdicom's default ones)."""
        ae = AE(ae_title=self.ae_title)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 120
        for context in contexts:
            if isinstance(context, tuple):
                ae.add_requested_context(*context)
            else:
                ae.add_requested_context(context)
        tls = (ssl.create_default_context(), node.host) if node.tls else None
        assoc = ae.associate(node.host, node.port, ae_title=node.ae_title, tls_args=tls)
        if not assoc.is_established:
            if assoc.is_rejected:
                why = f"rejected the association: {_rejection(assoc)}"
            elif assoc.is_aborted:
                why = "aborted the association"
            else:
                why = "could not be reached (no answer on that address and port)"
            raise RemoteError(f"{node.name} ({node.ae_title} at {node.host}:{node.port}) {why}")
        return assoc

    def _find(self, node: RemoteNode, keys: dict[str, str]) -> list[tuple[str, int]]:
        """(Study Instance UID, instances it holds) of each study the query matches."""
        identifier = Dataset()
        identifier.QueryRetrieveLevel = "STUDY"
        identifier.StudyInstanceUID = ""
        identifier.NumberOfStudyRelatedInstances = ""
        for key, value in keys.items():
            setattr(identifier, key, value)
        assoc = self._associate(node, StudyRootQueryRetrieveInformationModelFind)
        try:
            found: dict[str, int] = {}
            for status, answer in assoc.send_c_find(
                identifier, StudyRootQueryRetrieveInformationModelFind
            ):
                code = int(status.Status) if status is not None and "Status" in status else -1
                if code in (0xFF00, 0xFF01) and answer is not None:
                    uid = str(answer.get("StudyInstanceUID", ""))
                    count = answer.get("NumberOfStudyRelatedInstances")
                    if uid and uid_problem(uid) is None:
                        found[uid] = int(count) if count not in (None, "") else -1
                elif code != 0x0000:
                    raise RemoteError(f"C-FIND failed: {status_text(status)}")
            for uid, count in found.items():
                if count < 0:  # not given at study level: the series know
                    found[uid] = self._count_series(assoc, uid)
            return list(found.items())
        finally:
            assoc.release()

    def _count_series(self, assoc: Any, study_uid: str) -> int:
        identifier = Dataset()
        identifier.QueryRetrieveLevel = "SERIES"
        identifier.StudyInstanceUID = study_uid
        identifier.SeriesInstanceUID = ""
        identifier.NumberOfSeriesRelatedInstances = ""
        total = 0
        for status, answer in assoc.send_c_find(
            identifier, StudyRootQueryRetrieveInformationModelFind
        ):
            if status is not None and int(status.get("Status", -1)) in (0xFF00, 0xFF01):
                value = answer.get("NumberOfSeriesRelatedInstances") if answer else None
                total += int(value) if value not in (None, "") else 0
        return total

    def _instances(self, node: RemoteNode, study_uid: str) -> list[tuple[str, str]]:
        """(Series, SOP Instance UID) of every instance of a study the node holds: its series
        (C-FIND at series level), then each series' instances (at image level)."""
        assoc = self._associate(node, StudyRootQueryRetrieveInformationModelFind)
        try:
            series = self._find_uids(
                assoc, "SERIES", {"StudyInstanceUID": study_uid}, "SeriesInstanceUID"
            )
            found = []
            for uid in series:
                keys = {"StudyInstanceUID": study_uid, "SeriesInstanceUID": uid}
                found += [
                    (uid, sop) for sop in self._find_uids(assoc, "IMAGE", keys, "SOPInstanceUID")
                ]
            return found
        finally:
            assoc.release()

    def _find_uids(self, assoc: Any, level: str, keys: dict[str, str], wanted: str) -> list[str]:
        identifier = Dataset()
        identifier.QueryRetrieveLevel = level
        for name, value in keys.items():
            setattr(identifier, name, value)
        setattr(identifier, wanted, "")
        uids = []
        for status, answer in assoc.send_c_find(
            identifier, StudyRootQueryRetrieveInformationModelFind
        ):
            code = int(status.Status) if status is not None and "Status" in status else -1
            if code in (0xFF00, 0xFF01) and answer is not None:
                uid = str(answer.get(wanted, ""))
                if uid and uid_problem(uid) is None:
                    uids.append(uid)
            elif code != 0x0000:
                raise RemoteError(f"C-FIND failed: {status_text(status)}")
        return uids

    def _move(
        self,
        node: RemoteNode,
        destination: str,
        study_uid: str,
        instance: tuple[str, str] | None = None,
    ) -> Dataset | None:
        """Ask the node to send the study (or one ``(series, SOP Instance UID)`` of it) to
        ``destination`` (the project's AE title here); the final response (or None when the
        association broke)."""
        identifier = Dataset()
        identifier.QueryRetrieveLevel = "STUDY" if instance is None else "IMAGE"
        identifier.StudyInstanceUID = study_uid
        if instance is not None:
            identifier.SeriesInstanceUID, identifier.SOPInstanceUID = instance
        assoc = self._associate(node, StudyRootQueryRetrieveInformationModelMove)
        final: Dataset | None = None
        try:
            for status, _ in assoc.send_c_move(
                identifier, destination, StudyRootQueryRetrieveInformationModelMove
            ):
                if status is not None and "Status" in status:
                    final = status
        finally:
            if assoc.is_established:
                assoc.release()
        return final

    def _store(self, node: RemoteNode, files: list[bytes]) -> list[Dataset | None]:
        datasets = [dcmread(io.BytesIO(data)) for data in files]
        contexts: dict[str, list[str]] = {}
        for ds in datasets:
            syntaxes = contexts.setdefault(str(ds.SOPClassUID), [])
            syntaxes += [
                s for s in _store_syntaxes(ds.file_meta.TransferSyntaxUID) if s not in syntaxes
            ]
        assoc = self._associate(node, *contexts.items())
        answers: list[Dataset | None] = []
        try:
            for ds in datasets:
                answers.append(assoc.send_c_store(ds) if assoc.is_established else None)
        finally:
            if assoc.is_established:
                assoc.release()
        return answers


def _store_syntaxes(syntax: str) -> list[str]:
    """The file's own transfer syntax first, then the uncompressed ones (a deflated or
    big-endian file is re-encoded by pynetdicom when the node takes only those)."""
    return list(dict.fromkeys([syntax, ExplicitVRLittleEndian, ImplicitVRLittleEndian]))

"""The PACS side of a retrieval, as a DICOM SCU: C-FIND at study, series and image level,
C-MOVE of a study or one instance; blocking calls, in threads of their own."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from giftcloud_dicom.uid import uid_problem
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
)

from giftcloud_ingest.models import RemoteNode

T = TypeVar("T")


class RemoteError(Exception):
    """The remote node refused or failed; the message says how."""


def status_text(status: Dataset | None) -> str:
    if status is None or "Status" not in status:
        return "no answer from the remote node (association lost or timed out)"
    text = f"0x{int(status.Status):04X}"
    comment = status.get("ErrorComment")
    return f"{text} {comment}" if comment else text


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

    async def _in_thread(self, work: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._dicom, work, *args)

    def _associate(self, node: RemoteNode, context: str) -> Any:
        ae = AE(ae_title=self.ae_title)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 120
        ae.add_requested_context(context)
        tls = (ssl.create_default_context(), node.host) if node.tls else None
        assoc = ae.associate(node.host, node.port, ae_title=node.ae_title, tls_args=tls)
        if not assoc.is_established:
            why = "rejected the association" if assoc.is_rejected else "could not be reached"
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

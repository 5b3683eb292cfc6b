"""Cohort retrieval from a PACS: C-FIND the studies each query names, then C-MOVE each to
the project's own AE title at this node, and track what arrived to the archive.

A retrieval is a row with its queries and the studies they found; a worker (one task in
each ingest process) claims a running retrieval for a lease it renews while it works, so a
retrieval whose ingest was killed is taken up again once the lease runs out. The instances
a move brings in arrive at the DICOM node like any other association's; the node ties each
to the study being moved (its original Study Instance UID) and records the part it became,
so the retrieval's status reads each one's fate (archived, rejected and why) from the
upload outcomes. A study some retrieval of the project already moved is compared with the
PACS: complete (as many instances here as the PACS holds), it is skipped; otherwise the
instances the PACS added since are found (C-FIND at image level) and only those are moved.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import functools
import io
import json
import logging
import re
import ssl
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from giftcloud_core.errors import BadRequest, Conflict, NotFound
from giftcloud_deid.uid import uid_problem
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
)
from sqlalchemy import and_, func, or_, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select

from giftcloud_ingest.dicom_node import ae_title_problem
from giftcloud_ingest.models import (
    DicomRoute,
    RemoteNode,
    Retrieval,
    RetrievalPart,
    RetrievalQuery,
    RetrievalStudy,
    UploadOutcome,
)
from giftcloud_ingest.service import IngestService, Stored

log = logging.getLogger(__name__)

T = TypeVar("T")

#: the keys a query may hold (PS3.4 C.6.2.1: study-level keys of the Study Root model)
QUERY_KEYS = ("PatientID", "AccessionNumber", "StudyInstanceUID", "StudyDate", "ModalitiesInStudy")
DATE_RANGE = re.compile(r"^(\d{8})?(-(\d{8})?)?$")
NODE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
#: the most queries one retrieval holds
MAX_QUERIES = 10_000


class Cancelled(Exception):
    """The retrieval was cancelled while it worked."""


def _now() -> datetime:
    return datetime.now(UTC)


def check_query(query: dict[str, Any], where: str) -> dict[str, str]:
    """A query's keys, checked: 400 naming ``where`` and what is wrong."""
    if not isinstance(query, dict) or not query:
        raise BadRequest(f"{where}: a query names at least one of {', '.join(QUERY_KEYS)}")
    keys: dict[str, str] = {}
    for key, value in query.items():
        if key not in QUERY_KEYS:
            raise BadRequest(f"{where}: {key!r} is not a query key; use {', '.join(QUERY_KEYS)}")
        text = str(value).strip()
        if not text or len(text) > 64 or any(ord(c) < 0x20 for c in text):
            raise BadRequest(f"{where}: {key} must be 1 to 64 printable characters")
        if key == "StudyDate" and (not DATE_RANGE.match(text) or text == "-"):
            raise BadRequest(f"{where}: StudyDate is YYYYMMDD or a range YYYYMMDD-YYYYMMDD")
        if key == "StudyInstanceUID" and (problem := uid_problem(text)) is not None:
            raise BadRequest(f"{where}: StudyInstanceUID: {problem}")
        if key != "ModalitiesInStudy" and ("\\" in text or "*" in text or "?" in text):
            raise BadRequest(f"{where}: {key} takes one value, no wildcard")
        keys[key] = text
    return keys


def queries_from_csv(text: str) -> list[dict[str, str]]:
    """Queries from a CSV whose header row names query keys (AccessionNumber, PatientID, ...):
    one query a row, empty cells left out."""
    rows = list(csv.reader(io.StringIO(text)))
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows:
        raise BadRequest("the CSV is empty")
    header = [cell.strip().lstrip("\ufeff") for cell in rows[0]]
    unknown = [h for h in header if h not in QUERY_KEYS]
    if unknown:
        raise BadRequest(
            f"the CSV's header row names {unknown[0]!r}; it names query keys:"
            f" {', '.join(QUERY_KEYS)} (e.g. a single column AccessionNumber)"
        )
    queries = []
    for number, row in enumerate(rows[1:], start=2):
        query = {h: cell.strip() for h, cell in zip(header, row, strict=False) if cell.strip()}
        queries.append(check_query(query, f"CSV row {number}"))
    return queries


def _status_text(status: Dataset | None) -> str:
    if status is None or "Status" not in status:
        return "no answer from the remote node (association lost or timed out)"
    text = f"0x{int(status.Status):04X}"
    comment = status.get("ErrorComment")
    return f"{text} {comment}" if comment else text


class Retrievals:
    """Remote nodes, retrievals and the worker that carries them out."""

    def __init__(self, service: IngestService) -> None:
        self.service = service
        self.db = service.db
        self.settings = service.settings.ingest
        self._wake = asyncio.Event()
        self._nodes: dict[str, asyncio.Semaphore] = {}
        self._working: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        #: threads of their own for the blocking C-FIND/C-MOVE calls: a move may take many
        #: minutes, and asyncio's default executor is what STOW-RS checks its parts in
        self._dicom = ThreadPoolExecutor(max_workers=16, thread_name_prefix="retrieval")

    # --- remote nodes (admins) --------------------------------------------------------

    async def nodes(self) -> list[dict[str, Any]]:
        async with self.db.session() as session:
            rows = (await session.exec(select(RemoteNode).order_by(RemoteNode.name))).all()
        return [_node_public(r) for r in rows]

    async def put_node(self, name: str, data: dict[str, Any], by: str) -> dict[str, Any]:
        if not NODE_NAME.match(name) or name in ("dicom", "retrievals", "uploads", "forwarding"):
            raise BadRequest(
                "a node's name is lower-case letters, digits and '-' (1-63), and not a word"
                " the API uses (dicom, retrievals, uploads, forwarding)"
            )
        if (problem := ae_title_problem(str(data["ae_title"]))) is not None:
            raise BadRequest(f"ae_title: {problem}")
        row = RemoteNode(
            name=name,
            ae_title=str(data["ae_title"]).strip(" "),
            host=str(data["host"]),
            port=int(data["port"]),
            tls=bool(data.get("tls", False)),
            max_concurrent=int(data.get("max_concurrent", 2)),
            updated_by=by,
            updated_at=_now(),
        )
        async with self.db.session() as session:
            await session.merge(row)
        self._nodes.pop(name, None)  # its bound changes with the next study
        return _node_public(row)

    async def delete_node(self, name: str) -> None:
        async with self.db.session() as session:
            row = await session.get(RemoteNode, name)
            if row is None:
                raise NotFound(f"no remote node {name!r}")
            await session.delete(row)

    # --- retrievals -------------------------------------------------------------------

    async def create(
        self, project: str, node: str, queries: list[dict[str, str]], by: str
    ) -> dict[str, Any]:
        if not self.settings.dicom_port:
            raise Conflict(
                "this ingest has no DICOM node (GIFTCLOUD_INGEST__DICOM_PORT=0): a retrieval's"
                " studies arrive through it"
            )
        if not queries:
            raise BadRequest("a retrieval holds at least one query")
        if len(queries) > MAX_QUERIES:
            raise BadRequest(f"a retrieval holds at most {MAX_QUERIES} queries")
        async with self.db.session() as session:
            if await session.get(RemoteNode, node) is None:
                raise NotFound(f"no remote node {node!r} (an admin adds it: PUT /ingest/nodes)")
            if await session.get(DicomRoute, project) is None:
                raise Conflict(
                    f"project {project!r} has no DICOM AE title: the PACS moves the studies to"
                    " it (PUT /ingest/{project}/dicom), and must know it with this node's"
                    " address and port"
                )
            retrieval = Retrieval(id=uuid.uuid4().hex, project=project, node=node, created_by=by)
            session.add(retrieval)
            for index, query in enumerate(queries):
                session.add(
                    RetrievalQuery(retrieval_id=retrieval.id, index=index, keys=json.dumps(query))
                )
        self._wake.set()
        return await self.status(project, retrieval.id)

    async def _get(self, project: str, retrieval_id: str) -> Retrieval:
        async with self.db.session() as session:
            found = await session.get(Retrieval, retrieval_id)
        if found is None or found.project != project:
            raise NotFound(f"no retrieval {retrieval_id!r} in project {project!r}")
        return found

    async def set_state(self, project: str, retrieval_id: str, state: str) -> dict[str, Any]:
        """Cancel (the study being moved finishes; no other is moved) or resume."""
        found = await self._get(project, retrieval_id)
        if state == "running" and found.state == "done":
            raise Conflict(f"retrieval {retrieval_id} is done; start a new one to ask again")
        async with self.db.session() as session:
            await session.exec(
                update(Retrieval)
                .where(col(Retrieval.id) == retrieval_id)
                .values(
                    state=state,
                    updated_at=_now(),
                    **({"lease_until": None} if state == "running" else {}),
                )
            )
            if state == "running":  # what a cancel left unmoved is moved now
                await session.exec(
                    update(RetrievalStudy)
                    .where(
                        col(RetrievalStudy.retrieval_id) == retrieval_id,
                        col(RetrievalStudy.state) == "cancelled",
                    )
                    .values(state="pending")
                )
        self._wake.set()
        return await self.status(project, retrieval_id)

    async def of_project(self, project: str) -> list[dict[str, Any]]:
        async with self.db.session() as session:
            rows = (
                await session.exec(
                    select(Retrieval)
                    .where(Retrieval.project == project)
                    .order_by(col(Retrieval.created_at).desc())
                    .limit(100)
                )
            ).all()
        return [
            {
                "id": r.id,
                "node": r.node,
                "state": r.state,
                "created_by": r.created_by,
                "created_at": r.created_at.isoformat(),
            }
            for r in rows
        ]

    async def status(self, project: str, retrieval_id: str) -> dict[str, Any]:
        """Per query: the studies found, the instances expected, moved, archived, rejected
        (with reasons) and the remote node's failures."""
        retrieval = await self._get(project, retrieval_id)
        async with self.db.session() as session:
            queries = (
                await session.exec(
                    select(RetrievalQuery)
                    .where(RetrievalQuery.retrieval_id == retrieval_id)
                    .order_by(col(RetrievalQuery.index))
                )
            ).all()
            studies = (
                await session.exec(
                    select(RetrievalStudy).where(RetrievalStudy.retrieval_id == retrieval_id)
                )
            ).all()
            fates = (
                await session.exec(
                    select(RetrievalPart.study_uid, UploadOutcome.outcome, UploadOutcome.reason)
                    .join(
                        UploadOutcome,
                        and_(
                            col(UploadOutcome.item) == col(RetrievalPart.item),
                            col(UploadOutcome.upload_id)
                            == func.split_part(col(RetrievalPart.item), "/", 2),
                        ),
                        isouter=True,
                    )
                    .where(RetrievalPart.retrieval_id == retrieval_id)
                )
            ).all()
        by_study: dict[str, dict[str, Any]] = {}
        for study_uid, outcome, reason in fates:
            entry = by_study.setdefault(study_uid, {"moved": 0, "archived": 0, "rejected": []})
            entry["moved"] += 1
            if outcome == "archived":
                entry["archived"] += 1
            elif outcome == "rejected":
                entry["rejected"].append(reason)
        by_query: dict[int, list[RetrievalStudy]] = {}
        for study in studies:
            by_query.setdefault(study.query_index, []).append(study)
        out_queries = []
        for query in queries:
            mine = by_query.get(query.index, [])
            study_list = []
            for study in mine:
                fate = by_study.get(study.study_uid, {"moved": 0, "archived": 0, "rejected": []})
                study_list.append(
                    {
                        "study_uid": study.study_uid,
                        "state": study.state,
                        "expected": study.expected,
                        "moved": fate["moved"],
                        "archived": fate["archived"],
                        "rejected": len(fate["rejected"]),
                        "reasons": sorted(set(fate["rejected"]))[:20],
                        "remote_failed": study.failed,
                        "remote_status": study.status,
                    }
                )
            out_queries.append(
                {
                    "query": json.loads(query.keys),
                    "state": query.state,
                    "error": query.error,
                    "studies_found": len(mine),
                    "expected": sum(s["expected"] for s in study_list),
                    "moved": sum(s["moved"] for s in study_list),
                    "archived": sum(s["archived"] for s in study_list),
                    "rejected": sum(s["rejected"] for s in study_list),
                    "failed": sum(s["remote_failed"] for s in study_list),
                    "studies": study_list,
                }
            )
        return {
            "id": retrieval.id,
            "project": retrieval.project,
            "node": retrieval.node,
            "state": retrieval.state,
            "error": retrieval.error,
            "created_by": retrieval.created_by,
            "created_at": retrieval.created_at.isoformat(),
            "queries": out_queries,
        }

    # --- the node's side: an instance a move brought in ----------------------------------

    async def attribute(self, project: str, stored: Stored, item: str) -> None:
        """Record the part an instance became, under the retrieval moving its study (if any)."""
        study_uid, sop_uid = stored.study_uid, stored.sop_instance_uid
        async with self.db.session() as session:
            retrieval_id = (
                await session.exec(
                    select(RetrievalStudy.retrieval_id)
                    .where(
                        RetrievalStudy.project == project,
                        RetrievalStudy.study_uid == study_uid,
                        col(RetrievalStudy.state).in_(("moving", "moved")),
                    )
                    # the retrieval moving it now, before one that moved it earlier
                    .order_by(col(RetrievalStudy.state) != "moving")
                )
            ).first()
            if retrieval_id is None:
                return
            statement = insert(RetrievalPart).values(
                retrieval_id=retrieval_id, sop_uid=sop_uid, study_uid=study_uid, item=item
            )
            await session.exec(
                statement.on_conflict_do_update(
                    index_elements=["retrieval_id", "sop_uid"], set_={"item": item}
                )
            )

    # --- the worker -------------------------------------------------------------------

    async def keep_working(self) -> None:
        """Claim running retrievals no one holds, and carry each out; forever."""
        while True:
            try:
                for retrieval_id in await self._claim():
                    self._working.add(retrieval_id)
                    task = asyncio.create_task(self._carry_out(retrieval_id))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                    task.add_done_callback(functools.partial(self._done, retrieval_id))
            except Exception:
                log.exception("claiming retrievals failed; trying again")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.retrieval_poll_seconds)

    def _done(self, retrieval_id: str, _: asyncio.Task[None]) -> None:
        self._working.discard(retrieval_id)

    async def stop(self) -> None:
        """Stop working; give back the leases held, so a restart takes them up at once (a
        move under way in its thread ends with the process; the study is moved again)."""
        held = list(self._working)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._dicom.shutdown(wait=False, cancel_futures=True)
        if held:
            async with self.db.session() as session:
                await session.exec(
                    update(Retrieval).where(col(Retrieval.id).in_(held)).values(lease_until=None)
                )

    async def _claim(self) -> list[str]:
        now = _now()
        lease = now + timedelta(seconds=self.settings.retrieval_lease_seconds)
        async with self.db.session() as session:
            rows = (
                await session.exec(
                    update(Retrieval)
                    .where(
                        col(Retrieval.state) == "running",
                        col(Retrieval.id).not_in(self._working or {""}),
                        or_(
                            col(Retrieval.lease_until).is_(None),
                            col(Retrieval.lease_until) < now,
                        ),
                    )
                    .values(lease_until=lease)
                    .returning(col(Retrieval.id))
                )
            ).all()
        return [str(row[0]) for row in rows]

    async def _renew(self, retrieval_id: str) -> None:
        while True:
            await asyncio.sleep(self.settings.retrieval_lease_seconds / 3)
            lease = _now() + timedelta(seconds=self.settings.retrieval_lease_seconds)
            async with self.db.session() as session:
                await session.exec(
                    update(Retrieval)
                    .where(col(Retrieval.id) == retrieval_id)
                    .values(lease_until=lease)
                )

    async def _carry_out(self, retrieval_id: str) -> None:
        renewing = asyncio.create_task(self._renew(retrieval_id))
        try:
            async with self.db.session() as session:
                retrieval = await session.get(Retrieval, retrieval_id)
                node = await session.get(RemoteNode, retrieval.node) if retrieval else None
                route = await session.get(DicomRoute, retrieval.project) if retrieval else None
            if retrieval is None:
                return
            if node is None or route is None:
                missing = "remote node" if node is None else "project's DICOM AE title"
                await self._finish(retrieval_id, "done", f"the {missing} is gone")
                return
            await self._find_all(retrieval, node)
            await self._move_all(retrieval, node, route.ae_title)
            await self._finish(retrieval_id, "done", "")
            log.info("retrieval %s of project %s done", retrieval_id, retrieval.project)
        except Cancelled:
            log.info("retrieval %s cancelled", retrieval_id)
        except Exception as exc:
            log.exception("retrieval %s stopped; it is taken up again", retrieval_id)
            async with self.db.session() as session:
                await session.exec(
                    update(Retrieval)
                    .where(col(Retrieval.id) == retrieval_id)
                    .values(error=f"{type(exc).__name__}: {exc}"[:500])
                )
        finally:
            renewing.cancel()

    async def _finish(self, retrieval_id: str, state: str, error: str) -> None:
        async with self.db.session() as session:
            await session.exec(
                update(Retrieval)
                .where(col(Retrieval.id) == retrieval_id, col(Retrieval.state) == "running")
                .values(state=state, error=error, updated_at=_now(), lease_until=None)
            )

    async def _check_running(self, retrieval_id: str) -> None:
        async with self.db.session() as session:
            found = await session.get(Retrieval, retrieval_id)
        if found is None or found.state != "running":
            raise Cancelled

    def _bound(self, node: RemoteNode) -> asyncio.Semaphore:
        found = self._nodes.get(node.name)
        if found is None:
            found = self._nodes[node.name] = asyncio.Semaphore(max(1, node.max_concurrent))
        return found

    async def _find_all(self, retrieval: Retrieval, node: RemoteNode) -> None:
        async with self.db.session() as session:
            pending = (
                await session.exec(
                    select(RetrievalQuery).where(
                        RetrievalQuery.retrieval_id == retrieval.id,
                        RetrievalQuery.state == "pending",
                    )
                )
            ).all()
        for query in pending:
            await self._check_running(retrieval.id)
            try:
                async with self._bound(node):
                    found = await self._in_thread(self._find, node, json.loads(query.keys))
            except RemoteError as exc:
                state, error, found = "failed", str(exc), []
            else:
                state, error = "found", ""
            async with self.db.session() as session:
                for study_uid, expected in found:
                    await session.exec(
                        insert(RetrievalStudy)
                        .values(
                            retrieval_id=retrieval.id,
                            study_uid=study_uid,
                            query_index=query.index,
                            project=retrieval.project,
                            expected=expected,
                        )
                        .on_conflict_do_nothing()
                    )
                await session.exec(
                    update(RetrievalQuery)
                    .where(
                        col(RetrievalQuery.retrieval_id) == retrieval.id,
                        col(RetrievalQuery.index) == query.index,
                    )
                    .values(state=state, error=error, found=len(found))
                )

    async def _move_all(self, retrieval: Retrieval, node: RemoteNode, destination: str) -> None:
        async with self.db.session() as session:
            studies = (
                await session.exec(
                    select(RetrievalStudy).where(
                        RetrievalStudy.retrieval_id == retrieval.id,
                        col(RetrievalStudy.state).in_(("pending", "moving")),
                    )
                )
            ).all()

        async def one(study: RetrievalStudy) -> None:
            async with self._bound(node):
                await self._check_running(retrieval.id)
                await self._move_study(retrieval, node, destination, study)

        results = await asyncio.gather(*(one(s) for s in studies), return_exceptions=True)
        cancelled = any(isinstance(r, Cancelled) for r in results)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, Cancelled):
                raise result
        if cancelled:
            async with self.db.session() as session:
                await session.exec(
                    update(RetrievalStudy)
                    .where(
                        col(RetrievalStudy.retrieval_id) == retrieval.id,
                        col(RetrievalStudy.state) == "pending",
                    )
                    .values(state="cancelled")
                )
            raise Cancelled

    async def _move_study(
        self, retrieval: Retrieval, node: RemoteNode, destination: str, study: RetrievalStudy
    ) -> None:
        async with self.db.session() as session:
            earlier = (
                await session.exec(
                    select(RetrievalStudy.retrieval_id).where(
                        RetrievalStudy.project == retrieval.project,
                        RetrievalStudy.study_uid == study.study_uid,
                        RetrievalStudy.retrieval_id != retrieval.id,
                        col(RetrievalStudy.state).in_(("moved", "moving")),
                    )
                )
            ).first()
        key = (col(RetrievalStudy.retrieval_id) == retrieval.id) & (
            col(RetrievalStudy.study_uid) == study.study_uid
        )
        held: set[str] = set()
        if earlier is not None:
            held = await self._held(retrieval.project, study.study_uid)
            if len(held) >= study.expected:
                complete = f"{len(held)} of {study.expected} instances here"
                async with self.db.session() as session:
                    await session.exec(
                        update(RetrievalStudy)
                        .where(key)
                        .values(
                            state="skipped",
                            status=f"skipped: already complete ({complete}; already"
                            f" retrieved by retrieval {earlier})",
                        )
                    )
                return
        async with self.db.session() as session:
            await session.exec(update(RetrievalStudy).where(key).values(state="moving"))
        if earlier is not None:
            await self._move_missing(node, destination, study, held, key)
            return
        try:
            final = await self._in_thread(self._move, node, destination, study.study_uid)
        except RemoteError as exc:
            values: dict[str, Any] = {"state": "failed", "status": str(exc)}
        else:
            status = int(final.Status) if final is not None and "Status" in final else -1
            completed = int(final.get("NumberOfCompletedSuboperations", 0) or 0) if final else 0
            failed = int(final.get("NumberOfFailedSuboperations", 0) or 0) if final else 0
            warning = int(final.get("NumberOfWarningSuboperations", 0) or 0) if final else 0
            ok = status in (0x0000, 0xB000) and failed == 0
            values = {
                "state": "moved" if ok else "failed",
                "status": _status_text(final),
                "completed": completed,
                "failed": failed,
                "warning": warning,
            }
        async with self.db.session() as session:
            await session.exec(update(RetrievalStudy).where(key).values(**values))

    async def _held(self, project: str, study_uid: str) -> set[str]:
        """The SOP Instance UIDs of a study that some retrieval of the project brought in."""
        async with self.db.session() as session:
            found = await session.exec(
                select(RetrievalPart.sop_uid)
                .join(
                    RetrievalStudy,
                    and_(
                        col(RetrievalStudy.retrieval_id) == col(RetrievalPart.retrieval_id),
                        col(RetrievalStudy.study_uid) == col(RetrievalPart.study_uid),
                    ),
                )
                .where(RetrievalStudy.project == project, RetrievalPart.study_uid == study_uid)
            )
            return set(found.all())

    async def _move_missing(
        self,
        node: RemoteNode,
        destination: str,
        study: RetrievalStudy,
        held: set[str],
        key: Any,
    ) -> None:
        """A study retrieved before that the PACS holds more of now: what it added since is
        found instance by instance and only that is moved ("N new")."""
        values: dict[str, Any]
        try:
            listed = await self._in_thread(self._instances, node, study.study_uid)
            missing = [(series, sop) for series, sop in listed if sop not in held]
            completed = failed = 0
            for series, sop in missing:
                final = await self._in_thread(
                    self._move, node, destination, study.study_uid, (series, sop)
                )
                status = int(final.Status) if final is not None and "Status" in final else -1
                failures = (
                    int(final.get("NumberOfFailedSuboperations", 0) or 0)
                    if final is not None
                    else 1
                )
                if status in (0x0000, 0xB000) and failures == 0:
                    completed += 1
                else:
                    failed += 1
        except RemoteError as exc:
            values = {"state": "failed", "status": str(exc)}
        else:
            values = {
                "state": "moved" if not failed else "failed",
                "status": f"{len(missing)} new" + (f", {failed} failed" if failed else ""),
                "completed": completed,
                "failed": failed,
            }
        async with self.db.session() as session:
            await session.exec(update(RetrievalStudy).where(key).values(**values))

    # --- DICOM, in a worker thread --------------------------------------------------------

    async def _in_thread(self, work: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._dicom, work, *args)

    def _associate(self, node: RemoteNode, context: str) -> Any:
        ae = AE(ae_title=self.settings.dicom_ae_title)
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
                    raise RemoteError(f"C-FIND failed: {_status_text(status)}")
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
                raise RemoteError(f"C-FIND failed: {_status_text(status)}")
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


class RemoteError(Exception):
    """The remote node refused or failed; the message says how."""


def _node_public(row: RemoteNode) -> dict[str, Any]:
    return {
        "name": row.name,
        "ae_title": row.ae_title,
        "host": row.host,
        "port": row.port,
        "tls": row.tls,
        "max_concurrent": row.max_concurrent,
    }

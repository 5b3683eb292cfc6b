"""The worker: each ingest process claims running retrievals no one holds, for a lease it
renews while it works (a retrieval whose ingest was killed is taken up again once the
lease runs out), finds each query's studies and moves each study here."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from datetime import timedelta
from typing import Any

from giftcloud_core.clock import now as _now
from giftcloud_core.db import Database
from giftcloud_core.settings import IngestSettings
from sqlalchemy import and_, or_, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select

from giftcloud_ingest.models import (
    DicomRoute,
    RemoteNode,
    Retrieval,
    RetrievalPart,
    RetrievalQuery,
    RetrievalStudy,
)
from giftcloud_ingest.retrieval.queries import queries_of
from giftcloud_ingest.retrieval.scu import RemoteError, Scu, status_text

log = logging.getLogger(__name__)


class Cancelled(Exception):
    """The retrieval was cancelled while it worked."""


class RetrievalWorker:
    def __init__(self, settings: IngestSettings, db: Database, scu: Scu) -> None:
        self.settings = settings
        self.db = db
        self.scu = scu
        self._working: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def round(self, first: bool) -> None:
        """Claim running retrievals no one holds, and carry each out (a job's round)."""
        for retrieval_id in await self._claim():
            self._working.add(retrieval_id)
            task = asyncio.create_task(self._carry_out(retrieval_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            task.add_done_callback(functools.partial(self._done, retrieval_id))

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
        self.scu.shutdown()
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
            state, error = await self._outcome(retrieval_id)
            await self._finish(retrieval_id, state, error)
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

    async def _outcome(self, retrieval_id: str) -> tuple[str, str]:
        """done, unless nothing could be asked: failed when every query failed (the first
        error says why); done with a word when some did."""
        async with self.db.session() as session:
            queries = await queries_of(session, retrieval_id)
        failed = [q for q in queries if q.state == "failed"]
        if queries and len(failed) == len(queries):
            return "failed", f"every query failed; the first: {failed[0].error}"[:500]
        if failed:
            return "done", f"{len(failed)} of {len(queries)} queries failed: {failed[0].error}"[
                :500
            ]
        return "done", ""

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
                async with self.scu.bound(node):
                    found = await self.scu.find(node, json.loads(query.keys))
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
            async with self.scu.bound(node):
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
            final = await self.scu.move(node, destination, study.study_uid)
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
                "status": status_text(final),
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
            listed = await self.scu.instances(node, study.study_uid)
            missing = [(series, sop) for series, sop in listed if sop not in held]
            completed = failed = 0
            for series, sop in missing:
                final = await self.scu.move(node, destination, study.study_uid, (series, sop))
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

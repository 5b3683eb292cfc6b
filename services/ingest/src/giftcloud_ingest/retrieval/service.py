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
import json
import logging
import re
import uuid
from typing import Any

from giftcloud_core.clock import now as _now
from giftcloud_core.db import Database
from giftcloud_core.errors import BadRequest, Conflict, NotFound
from giftcloud_core.settings import IngestSettings
from giftcloud_dicom.instance import ae_title_problem
from sqlalchemy import and_, func, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select

from giftcloud_ingest.models import (
    DicomRoute,
    RemoteNode,
    Retrieval,
    RetrievalPart,
    RetrievalQuery,
    RetrievalStudy,
    UploadOutcome,
)
from giftcloud_ingest.receiving.checks import Stored
from giftcloud_ingest.retrieval.queries import MAX_QUERIES, queries_of
from giftcloud_ingest.retrieval.scu import Scu

log = logging.getLogger(__name__)

NODE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class Retrievals:
    """Remote nodes, retrievals and their status; the worker (worker.py) carries them out."""

    def __init__(self, settings: IngestSettings, db: Database, scu: Scu) -> None:
        self.db = db
        self.settings = settings
        self.scu = scu
        #: set when there is a retrieval to take up
        self.wake = asyncio.Event()

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
            renderings=bool(data.get("renderings", False)),
            updated_by=by,
            updated_at=_now(),
        )
        async with self.db.session() as session:
            await session.merge(row)
        self.scu.forget(name)  # its bound changes with the next study
        return _node_public(row)

    async def delete_node(self, name: str) -> None:
        async with self.db.session() as session:
            row = await session.get(RemoteNode, name)
            if row is None:
                raise NotFound(f"no remote node {name!r}")
            await session.delete(row)

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
        self.wake.set()
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
        if found.state in ("done", "failed"):
            raise Conflict(
                f"retrieval {retrieval_id} has ended ({found.state}); nothing is left to"
                + (" cancel" if state == "cancelled" else " resume: start a new one to ask again")
            )
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
        self.wake.set()
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
            queries = await queries_of(session, retrieval_id)
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
        # a query whose studies an earlier query had found (a repeated accession number in a
        # CSV) says so, rather than "found 0" as an unknown one would
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
            shared = max(0, query.found - len(mine))
            note = (
                f"{shared} of the {query.found} studies it matched were matched by an earlier"
                " query: they are listed there"
                if shared
                else ""
            )
            out_queries.append(
                {
                    "query": json.loads(query.keys),
                    "state": query.state,
                    "error": query.error,
                    "note": note,
                    "studies_found": len(mine),
                    "studies_matched": query.found,
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


def _node_public(row: RemoteNode) -> dict[str, Any]:
    return {
        "name": row.name,
        "ae_title": row.ae_title,
        "host": row.host,
        "port": row.port,
        "tls": row.tls,
        "max_concurrent": row.max_concurrent,
        "renderings": row.renderings,
    }

"""An upload's record: made before its first file is announced, counted as its files are
accepted and refused, and told each file's fate (archived, rejected and why) by the
outcome events; what a dead process cut off is marked interrupted."""

from __future__ import annotations

import logging
from datetime import datetime

from giftcloud_core.batching import Batcher
from giftcloud_core.bundle import upload_of
from giftcloud_core.db import Database
from giftcloud_core.errors import NotFound
from giftcloud_core.events import (
    Event,
    InstanceRejected,
    InstancesCatalogued,
)
from giftcloud_core.tokens import Principal
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select

from giftcloud_ingest.models import Upload, UploadOutcome
from giftcloud_ingest.receiving.checks import StoreResult

log = logging.getLogger(__name__)


def _outcome(
    upload_id: str,
    item: str,
    outcome: str,
    reason: str = "",
    uids: tuple[str, str, str] = ("", "", ""),
) -> dict[str, str]:
    study, series, sop = uids
    return {
        "upload_id": upload_id,
        "item": item,
        "outcome": outcome,
        "reason": reason,
        "study_uid": study,
        "series_uid": series,
        "sop_uid": sop,
    }


#: the note an archived outcome carries when the project held the instance already
SENT_BEFORE = "already in the project: sent before"


def item_name(project: str, upload_id: str, index: int) -> str:
    """The name of an upload's part ``index`` (the received object's, for an accepted one)."""
    return f"{project}/{upload_id}/{index:06d}.dcm"


def index_of(item: str) -> int:
    """The part's place in its upload, from its name (-1 for a name of another form)."""
    stem = item.rsplit("/", 1)[-1].removesuffix(".dcm")
    return int(stem) if stem.isdigit() else -1


class UploadRecords:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._outcomes: Batcher[dict[str, str]] = Batcher(self._write_outcomes)

    async def open(self, upload_id: str, project: str, caller: Principal, source: str) -> None:
        async with self.db.session() as db:
            db.add(Upload(id=upload_id, project=project, username=caller.subject, source=source))

    async def record_counts(self, project: str, result: StoreResult) -> None:
        """The upload's counts, and each file refused on arrival with its reason."""
        refusals = [
            _outcome(
                result.upload_id,
                item_name(project, result.upload_id, failed.index),
                "refused",
                failed.message,
                ("", "", failed.sop_instance_uid),
            )
            for failed in result.failed
        ]
        async with self.db.session() as session:
            await session.exec(
                update(Upload)
                .where(col(Upload.id) == result.upload_id)
                .values(accepted=len(result.stored), failed=len(result.failed), state="received")
            )
            if refusals:
                await session.exec(insert(UploadOutcome).values(refusals).on_conflict_do_nothing())

    async def interrupt_abandoned(self, since: datetime) -> int:
        """Mark interrupted the uploads still receiving that took nothing since ``since``
        (their process died: a live association or request is cut off long before); their
        counts say what was acknowledged. How many there were."""
        async with self.db.session() as session:
            found = await session.exec(
                update(Upload)
                .where(col(Upload.state) == "receiving", col(Upload.updated_at) <= since)
                .values(state="interrupted")
                .returning(col(Upload.id))
            )
            ids = list(found.all())
        if ids:
            log.warning(
                "%d upload(s) were cut off when their process stopped; marked interrupted: %s",
                len(ids),
                ", ".join(str(i) for i in ids[:10]),
            )
        return len(ids)

    async def on_outcome(self, event: Event) -> None:
        if isinstance(event, InstancesCatalogued):  # archived means found: in the catalogue
            rows = [
                _outcome(
                    upload_of(i.received_key) or event.correlation_id,
                    i.received_key or i.sop_uid,
                    "archived",
                    SENT_BEFORE if i.already else "",
                    uids=(i.study_uid, i.series_uid, i.sop_uid),
                )
                for i in event.instances
            ]
        elif isinstance(event, InstanceRejected):
            upload = upload_of(event.object_key) or event.correlation_id
            rows = [_outcome(upload, event.object_key, "rejected", event.reason)]
        else:
            return
        await self._outcomes.submit_all(rows)  # written with their neighbours, then acked

    async def _write_outcomes(self, rows: list[dict[str, str]]) -> None:
        """The first outcome of a file stands, but for a rejection: a file released from
        quarantine ends archived, or rejected again with the reason of now."""
        latest = {(row["upload_id"], row["item"]): row for row in rows}  # one row per file
        statement = insert(UploadOutcome).values(list(latest.values()))
        columns = ("outcome", "reason", "study_uid", "series_uid", "sop_uid")
        async with self.db.session() as session:
            await session.exec(
                statement.on_conflict_do_update(
                    index_elements=["upload_id", "item"],
                    set_={c: statement.excluded[c] for c in columns},
                    where=col(UploadOutcome.outcome) == "rejected",
                )
            )

    async def status(self, project: str, upload_id: str) -> dict[str, object]:
        """An upload's status: accepted, archived so far, and each rejection with its reason."""
        async with self.db.session() as session:
            upload = await session.get(Upload, upload_id)
            if upload is None or upload.project != project:
                raise NotFound(f"no upload {upload_id!r} in project {project!r}")
            outcomes = (
                await session.exec(
                    select(UploadOutcome).where(UploadOutcome.upload_id == upload_id)
                )
            ).all()
        rejected = [
            {"object": o.item.rsplit("/", 1)[-1], "index": index_of(o.item), "reason": o.reason}
            for o in outcomes
            if o.outcome == "rejected"
        ]
        refusals = [
            {"index": index_of(o.item), "sop_uid": o.sop_uid, "reason": o.reason}
            for o in outcomes
            if o.outcome == "refused"
        ]
        archived = sum(1 for o in outcomes if o.outcome == "archived")
        already = sum(1 for o in outcomes if o.outcome == "archived" and o.reason == SENT_BEFORE)
        return {
            "id": upload.id,
            "project": upload.project,
            "source": upload.source,
            "created_at": upload.created_at.isoformat(),
            "state": upload.state,
            "accepted": upload.accepted,
            "refused": upload.failed,
            "refusals": sorted(refusals, key=lambda r: int(str(r["index"]))),
            "archived": archived,
            "already": already,
            "rejected": rejected,
            "pending": max(0, upload.accepted - archived - len(rejected)),
        }

    async def archived_at(self, project: str, upload_id: str, index: int) -> str:
        """Where the instance sent as part ``index`` of an upload is now (a WADO-RS path);
        :class:`NotFound` saying why when it is not there (yet)."""
        item = item_name(project, upload_id, index)
        async with self.db.session() as session:
            upload = await session.get(Upload, upload_id)
            outcome = await session.get(UploadOutcome, (upload_id, item))
        if upload is None or upload.project != project:
            raise NotFound(f"no upload {upload_id!r} in project {project!r}")
        if outcome is None:
            raise NotFound(f"instance {index} of upload {upload_id} is not archived yet: try again")
        if outcome.outcome != "archived" or not outcome.sop_uid:
            raise NotFound(f"instance {index} of upload {upload_id} was rejected: {outcome.reason}")
        return (
            f"/dicomweb/{project}/studies/{outcome.study_uid}/series/{outcome.series_uid}"
            f"/instances/{outcome.sop_uid}"
        )

    async def listed(self, project: str) -> list[Upload]:
        async with self.db.session() as session:
            rows = await session.exec(
                select(Upload)
                .where(Upload.project == project)
                .order_by(col(Upload.created_at).desc())
                .limit(100)
            )
            return list(rows.all())

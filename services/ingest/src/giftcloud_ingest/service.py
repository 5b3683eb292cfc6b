from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from dataclasses import dataclass, field

from giftcloud_core.batching import Batcher
from giftcloud_core.bundle import pack
from giftcloud_core.bus import Bus
from giftcloud_core.db import Database
from giftcloud_core.dicom import (
    OUT_OF_RESOURCES,
    STUDY_UID_MISMATCH,
    InvalidInstance,
    inspect_instance,
)
from giftcloud_core.errors import NotFound
from giftcloud_core.events import (
    Event,
    InstanceRejected,
    InstancesArchived,
    InstancesReceived,
    ProjectCreated,
    ReceivedPart,
)
from giftcloud_core.metrics import INSTANCES
from giftcloud_core.settings import Settings
from giftcloud_core.storage import ObjectStore
from giftcloud_core.tokens import WRITE_ROLES, Principal
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select

from giftcloud_ingest.models import KnownProject, Upload, UploadOutcome

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stored:
    sop_class_uid: str
    sop_instance_uid: str
    study_uid: str
    series_uid: str


@dataclass(frozen=True)
class Failed:
    sop_class_uid: str
    sop_instance_uid: str
    reason: int
    message: str


@dataclass
class StoreResult:
    upload_id: str
    stored: list[Stored] = field(default_factory=list)
    failed: list[Failed] = field(default_factory=list)


#: an accepted file on its way into a bundle: its name in the upload, its bytes, what it is
Accepted = tuple[str, bytes, Stored]

#: a bundle holds at most this many instances and, unless one instance is larger, bytes:
#: anonymise and archive hold a few copies of each of their ``prefetch`` bundles at once
BUNDLE_PARTS = 100
BUNDLE_BYTES = 4 * 1024**2


def _check(data: bytes, study_uid: str | None) -> Stored | Failed:
    try:
        info = inspect_instance(data)
    except InvalidInstance as exc:
        return Failed(exc.sop_class_uid, exc.sop_instance_uid, exc.reason, exc.message)
    if study_uid is not None and info.study_uid != study_uid:
        return Failed(
            info.sop_class_uid,
            info.sop_instance_uid,
            STUDY_UID_MISMATCH,
            f"instance is of study {info.study_uid}, not {study_uid} named in the URL",
        )
    return Stored(info.sop_class_uid, info.sop_instance_uid, info.study_uid, info.series_uid)


def _bundles(
    accepted: list[Accepted],
) -> list[list[Accepted]]:
    bundles: list[list[Accepted]] = []
    size = 0
    for item in accepted:
        if not bundles or len(bundles[-1]) >= BUNDLE_PARTS or size + len(item[1]) > BUNDLE_BYTES:
            bundles.append([])
            size = 0
        bundles[-1].append(item)
        size += len(item[1])
    return bundles


def _outcome(upload_id: str, item: str, outcome: str, reason: str = "") -> dict[str, str]:
    return {"upload_id": upload_id, "item": item, "outcome": outcome, "reason": reason}


class IngestService:
    def __init__(self, settings: Settings, db: Database, bus: Bus, store: ObjectStore) -> None:
        self.settings = settings
        self.db = db
        self.bus = bus
        self.store = store
        self._outcomes: Batcher[dict[str, str]] = Batcher(self._write_outcomes)

    async def check_project(self, project: str, caller: Principal) -> None:
        """404 for an unknown project, 403 when the caller may not write to it."""
        async with self.db.session() as session:
            if await session.get(KnownProject, project) is None:
                raise NotFound(f"no project {project!r}")
        caller.require(project, WRITE_ROLES)

    async def receive(
        self,
        project: str,
        caller: Principal,
        files: list[bytes],
        *,
        source: str = "stow",
        study_uid: str | None = None,
    ) -> StoreResult:
        """Accept each file that is a whole DICOM instance: encrypted into ``incoming`` (in
        bundles), then announced. A file is accepted only once both have happened."""
        result = StoreResult(upload_id=uuid.uuid4().hex)
        checked = await asyncio.to_thread(lambda: [_check(data, study_uid) for data in files])
        accepted: list[Accepted] = []
        for index, (data, outcome) in enumerate(zip(files, checked, strict=True)):
            if isinstance(outcome, Failed):
                INSTANCES.labels("ingest", "invalid").inc()
                result.failed.append(outcome)
            else:  # named by position: files of one upload may share a SOP Instance UID
                accepted.append((f"{project}/{result.upload_id}/{index:06d}.dcm", data, outcome))
        bundles = _bundles(accepted)
        limit = asyncio.Semaphore(4)  # bundles are big: a few at a time

        async def store(number: int, bundle: list[Accepted]) -> bool:
            async with limit:
                key = f"{project}/{result.upload_id}/{number:04d}.bundle"
                return await self._store_bundle(project, result.upload_id, key, bundle, source)

        stored = await asyncio.gather(*(store(n, b) for n, b in enumerate(bundles)))
        for bundle, ok in zip(bundles, stored, strict=True):
            for _, _, info in bundle:
                if ok:
                    result.stored.append(info)
                else:
                    result.failed.append(
                        Failed(
                            info.sop_class_uid,
                            info.sop_instance_uid,
                            OUT_OF_RESOURCES,
                            "the instance could not be stored; try again",
                        )
                    )
        async with self.db.session() as session:
            session.add(
                Upload(
                    id=result.upload_id,
                    project=project,
                    username=caller.subject,
                    source=source,
                    accepted=len(result.stored),
                    failed=len(result.failed),
                )
            )
        return result

    async def _store_bundle(
        self,
        project: str,
        upload_id: str,
        key: str,
        bundle: list[Accepted],
        source: str,
    ) -> bool:
        """One object and one message for the bundle's instances; False when either failed."""
        try:
            await self.store.put(
                self.settings.storage.buckets.incoming, key, pack([data for _, data, _ in bundle])
            )
            await self.bus.publish(
                InstancesReceived(
                    project=project,
                    correlation_id=upload_id,
                    object_key=key,
                    parts=tuple(
                        ReceivedPart(
                            name=name, sha256=hashlib.sha256(data).hexdigest(), size=len(data)
                        )
                        for name, data, _ in bundle
                    ),
                    source=source,
                )
            )
        except Exception:
            log.exception("could not accept %d instance(s) as %s", len(bundle), key)
            await self._forget(key)
            INSTANCES.labels("ingest", "error").inc(len(bundle))
            return False
        INSTANCES.labels("ingest", "accepted").inc(len(bundle))
        return True

    async def _forget(self, key: str) -> None:
        try:
            await self.store.delete(self.settings.storage.buckets.incoming, key)
        except Exception:
            log.exception("could not remove %s after a failed publish", key)

    async def on_project_event(self, event: Event) -> None:
        if isinstance(event, ProjectCreated):
            async with self.db.session() as session:
                await session.exec(
                    insert(KnownProject).values(name=event.project).on_conflict_do_nothing()
                )

    async def on_outcome(self, event: Event) -> None:
        if isinstance(event, InstancesArchived):
            rows = [
                _outcome(event.correlation_id, i.received_key or i.sop_uid, "archived")
                for i in event.instances
            ]
        elif isinstance(event, InstanceRejected):
            rows = [_outcome(event.correlation_id, event.object_key, "rejected", event.reason)]
        else:
            return
        await self._outcomes.submit_all(rows)  # written with their neighbours, then acked

    async def _write_outcomes(self, rows: list[dict[str, str]]) -> None:
        async with self.db.session() as session:
            await session.exec(insert(UploadOutcome).values(rows).on_conflict_do_nothing())

    async def upload(self, project: str, upload_id: str) -> dict[str, object]:
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
            {"object": o.item.rsplit("/", 1)[-1], "reason": o.reason}
            for o in outcomes
            if o.outcome == "rejected"
        ]
        archived = sum(1 for o in outcomes if o.outcome == "archived")
        return {
            "id": upload.id,
            "project": upload.project,
            "source": upload.source,
            "created_at": upload.created_at.isoformat(),
            "accepted": upload.accepted,
            "refused": upload.failed,
            "archived": archived,
            "rejected": rejected,
            "pending": upload.accepted - archived - len(rejected),
        }

    async def uploads(self, project: str) -> list[Upload]:
        async with self.db.session() as session:
            rows = await session.exec(
                select(Upload)
                .where(Upload.project == project)
                .order_by(col(Upload.created_at).desc())
                .limit(100)
            )
            return list(rows.all())

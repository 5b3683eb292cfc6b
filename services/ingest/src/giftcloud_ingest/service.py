from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from giftcloud_core.access import authorize
from giftcloud_core.batching import Batcher
from giftcloud_core.budget import MemoryBudget
from giftcloud_core.bundle import pack
from giftcloud_core.bus import Bus
from giftcloud_core.db import Database
from giftcloud_core.dicom import (
    OUT_OF_RESOURCES,
    PROCESSING_FAILURE,
    SOP_CLASS_NOT_SUPPORTED,
    STUDY_UID_MISMATCH,
    InvalidInstance,
    inspect_instance,
)
from giftcloud_core.errors import NotFound
from giftcloud_core.events import (
    Event,
    InstanceRejected,
    InstancesCatalogued,
    InstancesReceived,
    ProjectCreated,
    ProjectUpdated,
    ReceivedPart,
)
from giftcloud_core.metrics import INSTANCES
from giftcloud_core.settings import Settings
from giftcloud_core.storage import ObjectStore
from giftcloud_core.tokens import WRITE_ROLES, Principal
from giftcloud_deid import (
    DEFAULT_NAMESPACE,
    DEFAULT_PROFILE,
    Admission,
    PatientNamespace,
    Profile,
    Rejected,
)
from sqlalchemy import delete, func, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select

from giftcloud_ingest.models import KnownProject, PendingBundle, Upload, UploadOutcome

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stored:
    sop_class_uid: str
    sop_instance_uid: str
    study_uid: str
    series_uid: str
    #: bytes a reader holds: the file's size, or what it inflates to
    held_bytes: int = 0
    #: its place in the upload (0-based): how clients tie an answer to the file they sent
    index: int = -1


@dataclass(frozen=True)
class Failed:
    sop_class_uid: str
    sop_instance_uid: str
    reason: int
    message: str
    index: int = -1


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


def check_instance(
    data: bytes, study_uid: str | None, max_inflated: int, admission: Admission | None
) -> Stored | Failed:
    try:
        info = inspect_instance(data, max_inflated=max_inflated)
    except InvalidInstance as exc:
        return Failed(exc.sop_class_uid, exc.sop_instance_uid, exc.reason, exc.message)
    if study_uid is not None and info.study_uid != study_uid:
        return Failed(
            info.sop_class_uid,
            info.sop_instance_uid,
            STUDY_UID_MISMATCH,
            f"instance is of study {info.study_uid}, not {study_uid} named in the URL",
        )
    if admission is not None:
        try:  # what the project's profile decides from the header: refused now, not later
            admission.check(data)
        except Rejected as exc:
            code = SOP_CLASS_NOT_SUPPORTED if "allow-list" in exc.reason else PROCESSING_FAILURE
            return Failed(info.sop_class_uid, info.sop_instance_uid, code, exc.reason)
    return Stored(
        info.sop_class_uid,
        info.sop_instance_uid,
        info.study_uid,
        info.series_uid,
        max(len(data), info.inflated_size),
    )


def _bundles(
    accepted: list[Accepted],
) -> list[list[Accepted]]:
    bundles: list[list[Accepted]] = []
    size = 0
    for item in accepted:
        held = item[2].held_bytes
        if not bundles or len(bundles[-1]) >= BUNDLE_PARTS or size + held > BUNDLE_BYTES:
            bundles.append([])
            size = 0
        bundles[-1].append(item)
        size += held
    return bundles


def split_list(text: str) -> list[str]:
    """A comma-separated column (networks) as its items."""
    return [item for item in text.split(",") if item]


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


class UploadSession:
    """One upload as its files arrive (a STOW-RS body as it streams, an association):
    files are checked and stored in bundles as they fill, a few bundles at a time, so an
    upload of any size holds only a few bundles' worth of files in memory.

    Each accepted file is whole in ``incoming`` and announced, or reported failed; the
    upload's row says how many were accepted and refused.
    """

    def __init__(
        self,
        service: IngestService,
        project: str,
        caller: Principal,
        source: str,
        study_uid: str | None,
    ) -> None:
        self.service = service
        self.project = project
        self.caller = caller
        self.source = source
        self.study_uid = study_uid
        self.result = StoreResult(upload_id=uuid.uuid4().hex)
        self._files = 0
        self._bundles = 0
        self._pending: list[tuple[int, bytes]] = []
        self._pending_bytes = 0
        self._slots = asyncio.Semaphore(4)  # batches being checked and stored at once
        self._tasks: list[asyncio.Task[None]] = []
        self._outcomes: dict[int, Stored | Failed] = {}

    async def add(self, data: bytes) -> None:
        """One file of the upload; stored with its neighbours once a bundle's worth is here."""
        self._pending.append((self._next(), data))
        self._pending_bytes += len(data)
        if len(self._pending) >= BUNDLE_PARTS or self._pending_bytes >= BUNDLE_BYTES:
            await self._flush()

    def refuse(self, reason: int, message: str) -> None:
        """One file of the upload refused before it was read whole (too large, say)."""
        self._outcomes[self._next()] = Failed("", "", reason, message)

    async def finish(self) -> StoreResult:
        """Store what is still pending, wait for every batch, record the upload's counts."""
        try:
            await self._flush()
            await asyncio.gather(*self._tasks)
        finally:
            for index in sorted(self._outcomes):
                outcome = replace(self._outcomes[index], index=index)
                if isinstance(outcome, Failed):
                    self.result.failed.append(outcome)
                else:
                    self.result.stored.append(outcome)
            await self.service._record_counts(self.result)
        return self.result

    def _next(self) -> int:
        self._files += 1
        return self._files - 1

    async def _flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending, self._pending_bytes = self._pending, [], 0
        await self._slots.acquire()  # back-pressure: the body is not read while all are busy
        holding = asyncio.Event()
        self._tasks.append(asyncio.create_task(self._store(batch, holding)))
        await holding.wait()  # and not while the process holds its budget of instances

    async def _store(self, batch: list[tuple[int, bytes]], holding: asyncio.Event) -> None:
        try:
            size = sum(len(data) for _, data in batch)
            async with self.service.budget.hold(size):
                holding.set()
                await self._check_and_store(batch)
        finally:
            holding.set()
            self._slots.release()

    async def _check_and_store(self, batch: list[tuple[int, bytes]]) -> None:
        service = self.service
        ceiling = service.settings.limits.inflated_ceiling
        admission = service.admission(self.project)
        checked = await asyncio.to_thread(
            lambda: [check_instance(data, self.study_uid, ceiling, admission) for _, data in batch]
        )
        await self._store_checked(batch, checked)

    async def add_checked(self, data: bytes, checked: Stored | Failed) -> Stored | Failed:
        """One file, checked by the caller, for a sender that waits for each answer (a DICOM
        association): answered only once the instance is whole in ``incoming`` and
        announced. It shares a bundle with what the project's other senders sent meanwhile
        (:class:`SharedBundles`)."""
        index = self._next()
        if isinstance(checked, Failed):
            INSTANCES.labels("ingest", "invalid").inc()
            self._outcomes[index] = checked
            return checked
        async with self.service.budget.hold(len(data)):
            name = f"{self.project}/{self.result.upload_id}/{index:06d}.dcm"
            ok = await self.service.shared_bundles(self.project).store((name, data, checked))
        outcome: Stored | Failed = replace(checked, index=index) if ok else _not_stored(checked)
        self._outcomes[index] = outcome
        return outcome

    async def _store_checked(
        self, batch: list[tuple[int, bytes]], checked: list[Stored | Failed]
    ) -> None:
        service = self.service
        accepted: list[Accepted] = []
        names: dict[str, int] = {}
        for (index, data), outcome in zip(batch, checked, strict=True):
            if isinstance(outcome, Failed):
                INSTANCES.labels("ingest", "invalid").inc()
                self._outcomes[index] = outcome
            else:
                name = f"{self.project}/{self.result.upload_id}/{index:06d}.dcm"
                names[name] = index
                accepted.append((name, data, outcome))
        for bundle in _bundles(accepted):
            number, self._bundles = self._bundles, self._bundles + 1
            key = f"{self.project}/{self.result.upload_id}/{number:04d}.bundle"
            ok = await service._store_bundle(
                self.project,
                self.result.upload_id,
                key,
                bundle,
                self.source,
                {self.result.upload_id: len(bundle)},
            )
            for name, _, info in bundle:
                self._outcomes[names[name]] = info if ok else _not_stored(info)


def upload_of(name: str) -> str | None:
    """The upload a received part belongs to, from its name (``{project}/{upload}/{n}.dcm``)."""
    parts = name.split("/")
    return parts[1] if len(parts) == 3 and parts[2].endswith(".dcm") else None


class SharedBundles:
    """One project's instances from senders that each wait for their answer (DICOM
    associations, one instance at a time each): the first is stored at once in a bundle of
    its own; what arrives while a bundle is being stored goes into the next one together
    (up to :data:`BUNDLE_PARTS` / :data:`BUNDLE_BYTES`). Eight associations then cost one
    object and one message per round rather than eight, and one alone waits for nothing."""

    def __init__(self, service: IngestService, project: str) -> None:
        self.service = service
        self.project = project
        self._waiting: list[tuple[Accepted, asyncio.Future[bool]]] = []
        self._storing: asyncio.Task[None] | None = None

    async def store(self, item: Accepted) -> bool:
        """True once the instance is in ``incoming`` and announced; False if it could not be."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        if self._storing is None:
            self._storing = asyncio.create_task(self._store_all())
        return await done

    async def _store_all(self) -> None:
        try:
            while self._waiting:
                bundle: list[tuple[Accepted, asyncio.Future[bool]]] = []
                size = 0
                while self._waiting and len(bundle) < BUNDLE_PARTS:
                    held = self._waiting[0][0][2].held_bytes
                    if bundle and size + held > BUNDLE_BYTES:
                        break
                    bundle.append(self._waiting.pop(0))
                    size += held
                try:
                    ok = await self._store_one(bundle)
                except Exception:
                    log.exception("could not store a bundle of %d instance(s)", len(bundle))
                    ok = False
                for _, done in bundle:
                    if not done.done():
                        done.set_result(ok)
        finally:
            self._storing = None
            for _, done in self._waiting:  # cancelled part way (the process stops)
                if not done.done():
                    done.set_result(False)
            self._waiting.clear()

    async def _store_one(self, bundle: list[tuple[Accepted, asyncio.Future[bool]]]) -> bool:
        items = [item for item, _ in bundle]
        uploads = [upload_of(name) or "" for name, _, _ in items]
        key = f"{self.project}/{uploads[0]}/{uuid.uuid4().hex[:12]}.bundle"
        counts: dict[str, int] = {}
        for upload in uploads:
            counts[upload] = counts.get(upload, 0) + 1
        return await self.service._store_bundle(
            self.project, uploads[0], key, items, "dimse", counts
        )


def _not_stored(info: Stored) -> Failed:
    return Failed(
        info.sop_class_uid,
        info.sop_instance_uid,
        OUT_OF_RESOURCES,
        "the instance could not be stored; try again",
    )


class IngestService:
    def __init__(self, settings: Settings, db: Database, bus: Bus, store: ObjectStore) -> None:
        self.settings = settings
        self.db = db
        self.bus = bus
        self.store = store
        #: bytes of received instances this process checks and stores at once, whatever the
        #: number of uploads (one batch larger than the budget goes alone)
        self.budget = MemoryBudget(settings.bus.memory_budget_bytes)
        self._admissions = lru_cache(maxsize=256)(self._admission)
        self._outcomes: Batcher[dict[str, str]] = Batcher(self._write_outcomes)
        self._shared: dict[str, SharedBundles] = {}

    def shared_bundles(self, project: str) -> SharedBundles:
        found = self._shared.get(project)
        if found is None:
            found = self._shared[project] = SharedBundles(self, project)
        return found

    def admission(self, project: str) -> Admission | None:
        """At a site, what the project's profile (as anonymise reads it) decides from a
        header; a hub de-identifies nothing and decides nothing here."""
        if self.settings.anonymise.mode != "deidentify":
            return None
        found: Admission = self._admissions(project)
        return found

    def _admission(self, project: str) -> Admission:
        config = self.settings.anonymise
        folder = config.profiles_dir
        path = folder / f"{project}.yaml" if folder else None
        profile = Profile.load(path) if path is not None and path.is_file() else DEFAULT_PROFILE
        namespace = PatientNamespace.load(config.namespace_file) if config.namespace_file else None
        return Admission(
            profile,
            namespace or DEFAULT_NAMESPACE,
            max_inflated=self.settings.limits.inflated_ceiling,
        )

    async def check_project(
        self, project: str, caller: Principal, address: str, roles: frozenset[str] = WRITE_ROLES
    ) -> None:
        """404 for an unknown project, 403 when the caller may not write to it (its role, the
        project's networks, the credential's networks)."""
        async with self.db.session() as session:
            known = await session.get(KnownProject, project)
        if known is None:
            raise NotFound(f"no project {project!r}")
        authorize(caller, project, roles, networks=split_list(known.networks), address=address)

    async def open_upload(
        self,
        project: str,
        caller: Principal,
        *,
        source: str = "stow",
        study_uid: str | None = None,
        sender: str = "",
    ) -> UploadSession:
        """A new upload, recorded before its first file is announced (so its status exists
        for every outcome); :meth:`UploadSession.finish` records its counts. ``source`` is
        the way in (as events name it); ``sender``, when given, is what the upload's status
        shows as its source (a DICOM association's calling AE title and address)."""
        session = UploadSession(self, project, caller, source, study_uid)
        async with self.db.session() as db:
            db.add(
                Upload(
                    id=session.result.upload_id,
                    project=project,
                    username=caller.subject,
                    source=sender or source,
                )
            )
        return session

    async def _record_counts(self, result: StoreResult) -> None:
        async with self.db.session() as session:
            await session.exec(
                update(Upload)
                .where(col(Upload.id) == result.upload_id)
                .values(accepted=len(result.stored), failed=len(result.failed), state="received")
            )

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
        upload = await self.open_upload(project, caller, source=source, study_uid=study_uid)
        for data in files:
            await upload.add(data)
        return await upload.finish()

    async def _store_bundle(
        self,
        project: str,
        upload_id: str,
        key: str,
        bundle: list[Accepted],
        source: str,
        counts: dict[str, int],
    ) -> bool:
        """One object and one message for the bundle's instances; False when either failed.
        The bundle is recorded as pending first, and no longer once its message is out; then
        its uploads count what they accepted (``counts``), in the same transaction."""
        try:
            async with self.db.session() as session:
                session.add(PendingBundle(key=key))
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
                            name=name,
                            sha256=hashlib.sha256(data).hexdigest(),
                            size=len(data),
                            inflated_size=info.held_bytes if info.held_bytes > len(data) else 0,
                        )
                        for name, data, info in bundle
                    ),
                    source=source,
                )
            )
        except Exception:
            log.exception("could not accept %d instance(s) as %s", len(bundle), key)
            await self._forget(key)
            INSTANCES.labels("ingest", "error").inc(len(bundle))
            return False
        await self._settled([key], counts)
        INSTANCES.labels("ingest", "accepted").inc(len(bundle))
        return True

    async def _forget(self, key: str) -> None:
        try:
            await self.store.delete(self.settings.storage.buckets.incoming, key)
        except Exception:
            log.exception("could not remove %s after a failed publish", key)
            return  # still pending: the sweep tries again
        await self._settled([key])

    async def _settled(self, keys: list[str], counts: dict[str, int] | None = None) -> None:
        """The bundles are announced (or taken back): no longer pending; and, as each is
        announced, its uploads count what they accepted (an upload cut short still says)."""
        try:
            async with self.db.session() as session:
                await session.exec(delete(PendingBundle).where(col(PendingBundle.key).in_(keys)))
                for upload_id, count in (counts or {}).items():
                    await session.exec(
                        update(Upload)
                        .where(col(Upload.id) == upload_id)
                        .values(accepted=col(Upload.accepted) + count, updated_at=func.now())
                    )
        except Exception:  # left pending, the sweep finds it done; the count is a report
            log.exception("could not record bundles %s as announced", keys)

    async def sweep_orphans(self, older_than: float) -> int:
        """Remove the bundles begun more than ``older_than`` seconds ago and never announced
        (their process died between the object and the message); how many there were."""
        since = datetime.now(UTC) - timedelta(seconds=older_than)
        async with self.db.session() as session:
            keys = list(
                (
                    await session.exec(
                        select(PendingBundle.key).where(col(PendingBundle.created_at) <= since)
                    )
                ).all()
            )
        for key in keys:
            await self._forget(key)
        if keys:
            log.warning(
                "removed %d bundle(s) from incoming that were stored but never announced"
                " (a process stopped in between; their uploads were not acknowledged)",
                len(keys),
            )
        return len(keys)

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

    async def keep_sweeping(self) -> None:
        """At the start (everything left, for the sole ingest), then every minute."""
        config = self.settings.ingest
        started = datetime.now(UTC)  # the sole ingest: nothing before it is still receiving
        await self.sweep_orphans(0 if config.sole_instance else config.orphan_seconds)
        stale = timedelta(seconds=config.orphan_seconds)
        await self.interrupt_abandoned(started if config.sole_instance else started - stale)
        while True:
            await asyncio.sleep(60)
            try:
                await self.sweep_orphans(config.orphan_seconds)
                await self.interrupt_abandoned(datetime.now(UTC) - stale)
            except Exception:
                log.exception("sweeping orphaned bundles failed; trying again in a minute")

    async def on_project_event(self, event: Event) -> None:
        if isinstance(event, ProjectCreated):
            async with self.db.session() as session:
                await session.exec(
                    insert(KnownProject).values(name=event.project).on_conflict_do_nothing()
                )
        elif isinstance(event, ProjectUpdated):
            networks = ",".join(event.networks)
            statement = insert(KnownProject).values(name=event.project, networks=networks)
            async with self.db.session() as session:
                await session.exec(
                    statement.on_conflict_do_update(
                        index_elements=["name"], set_={"networks": networks}
                    )
                )

    async def on_outcome(self, event: Event) -> None:
        if isinstance(event, InstancesCatalogued):  # archived means found: in the catalogue
            rows = [
                _outcome(
                    upload_of(i.received_key) or event.correlation_id,
                    i.received_key or i.sop_uid,
                    "archived",
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
            "state": upload.state,
            "accepted": upload.accepted,
            "refused": upload.failed,
            "archived": archived,
            "rejected": rejected,
            "pending": max(0, upload.accepted - archived - len(rejected)),
        }

    async def archived_at(self, project: str, upload_id: str, index: int) -> str:
        """Where the instance sent as part ``index`` of an upload is now (a WADO-RS path);
        :class:`NotFound` saying why when it is not there (yet)."""
        item = f"{project}/{upload_id}/{index:06d}.dcm"
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

    async def uploads(self, project: str) -> list[Upload]:
        async with self.db.session() as session:
            rows = await session.exec(
                select(Upload)
                .where(Upload.project == project)
                .order_by(col(Upload.created_at).desc())
                .limit(100)
            )
            return list(rows.all())

"""Accepted files travel on in bundles: one encrypted object in ``incoming`` and one
message for up to a hundred instances. A bundle is recorded as pending before its object
is written and settled once its message is out; a sweep removes what a dead process left
between the two."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from datetime import UTC, datetime, timedelta

from giftcloud_core.bundle import pack, upload_of
from giftcloud_core.bus import Bus
from giftcloud_core.db import Database
from giftcloud_core.events import (
    InstancesReceived,
    ReceivedPart,
)
from giftcloud_core.metrics import INSTANCES
from giftcloud_core.settings import Settings
from giftcloud_core.storage import ObjectStore
from sqlalchemy import delete, func, update
from sqlmodel import col, select

from giftcloud_ingest.models import PendingBundle, Upload
from giftcloud_ingest.receiving.checks import Stored

log = logging.getLogger(__name__)
#: an accepted file on its way into a bundle: its name in the upload, its bytes, what it is
Accepted = tuple[str, bytes, Stored]

#: a bundle holds at most this many instances and, unless one instance is larger, bytes:
#: anonymise and archive hold a few copies of each of their ``prefetch`` bundles at once
BUNDLE_PARTS = 100
BUNDLE_BYTES = 4 * 1024**2


def split_into_bundles(accepted: list[Accepted]) -> list[list[Accepted]]:
    """Accepted files in bundles of at most BUNDLE_PARTS files and BUNDLE_BYTES."""
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


class SharedBundles:
    """One project's instances from senders that each wait for their answer (DICOM
    associations, one instance at a time each): the first is stored at once in a bundle of
    its own; what arrives while a bundle is being stored goes into the next one together
    (up to :data:`BUNDLE_PARTS` / :data:`BUNDLE_BYTES`). Eight associations then cost one
    object and one message per round rather than eight, and one alone waits for nothing."""

    def __init__(self, bundles: Bundles, project: str) -> None:
        self.bundles = bundles
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
        return await self.bundles.store(self.project, uploads[0], key, items, "dimse", counts)


class Bundles:
    """Bundles into ``incoming``: stored and announced, or taken back."""

    def __init__(self, settings: Settings, db: Database, bus: Bus, store: ObjectStore) -> None:
        self.settings = settings
        self.db = db
        self.bus = bus
        self.objects = store
        self._shared: dict[str, SharedBundles] = {}

    def shared(self, project: str) -> SharedBundles:
        """The project's bundles for senders that wait for each answer."""
        found = self._shared.get(project)
        if found is None:
            found = self._shared[project] = SharedBundles(self, project)
        return found

    async def store(
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
            await self.objects.put(
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
            await self.objects.delete(self.settings.storage.buckets.incoming, key)
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

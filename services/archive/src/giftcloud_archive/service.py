from __future__ import annotations

import asyncio
import hashlib

from giftcloud_core.bundle import fetch
from giftcloud_core.bus import Bus, PermanentFailure
from giftcloud_core.events import (
    ArchivedInstance,
    DeidentifiedPart,
    Event,
    InstancesArchived,
    InstancesDeidentified,
)
from giftcloud_core.metrics import INSTANCES
from giftcloud_core.settings import Settings
from giftcloud_core.storage import ObjectStore, archive_key
from giftcloud_dicom.metadata import Summary, bulk_uri, describe


class ArchiveService:
    """Lays out each bundle of de-identified instances in the archive: every instance at its
    key (one object each), then one ``instances.archived`` for the bundle carrying each
    instance's DICOM JSON for the catalogue, then the bundle goes from ``outgoing``.
    Redelivery at any point repeats idempotent steps only; a bundle already gone was
    finished before.

    A re-sent instance (the same SOP Instance UID, perhaps in another transfer syntax) keeps
    the copy archived first, as Orthanc does by default: the object is never overwritten,
    and the event describes the copy that is there, so archive and catalogue always agree
    and nothing a client has read (sizes, metadata, frames) changes under it. The
    catalogue settles the one race left (two first copies laid out at the same moment) by
    reading which one the object holds.
    """

    def __init__(self, settings: Settings, bus: Bus, store: ObjectStore) -> None:
        self.buckets = settings.storage.buckets
        self.max_inflated = settings.limits.inflated_ceiling
        self.bus = bus
        self.store = store

    async def on_deidentified(self, event: Event) -> None:
        if not isinstance(event, InstancesDeidentified):
            return
        try:  # every key is built before anything is written: all of the bundle or none
            keys = [
                archive_key(event.project, part.study_uid, part.series_uid, part.sop_uid)
                for part in event.instances
            ]
        except ValueError as exc:
            raise PermanentFailure(f"{event.object_key}: {exc}") from exc
        count = len(event.instances)
        files = await fetch(self.store, self.buckets.outgoing, event.object_key, count)
        if files is None:
            return
        unique: dict[str, tuple[DeidentifiedPart, bytes]] = {}
        for key, part, data in zip(keys, event.instances, files, strict=True):
            unique.setdefault(key, (part, data))  # the same instance twice: laid out once
        limit = asyncio.Semaphore(8)

        async def first_copy(key: str, part: DeidentifiedPart, data: bytes) -> tuple[bytes, str]:
            """The copy to keep: the one archived before, if any (its checksum), else this."""
            async with limit:
                if await self.store.exists(self.buckets.archive, key):
                    kept = await self.store.get(self.buckets.archive, key)
                    return kept, hashlib.sha256(kept).hexdigest()
            return data, part.sha256

        async with asyncio.TaskGroup() as group:  # one failure stops the rest: all are retried
            found = {k: group.create_task(first_copy(k, p, d)) for k, (p, d) in unique.items()}
        copies = {key: task.result() for key, task in found.items()}
        described = await asyncio.to_thread(
            lambda: {
                key: describe(
                    copies[key][0],
                    bulk_uri(event.project, part.study_uid, part.series_uid, part.sop_uid),
                    self.max_inflated,
                )
                for key, (part, _) in unique.items()
            }
        )

        async def put(key: str, data: bytes) -> None:
            async with limit:
                await self.store.put(self.buckets.archive, key, data, "application/dicom")

        async with asyncio.TaskGroup() as group:
            for key, (_, data) in unique.items():
                if copies[key][0] is data:  # none before it: this one is the first
                    group.create_task(put(key, data))
        archived = {
            key: _archived(key, part, copies[key][0], copies[key][1], *described[key])
            for key, (part, _) in unique.items()
        }
        first: set[str] = set()  # a key laid out now: its first part is new, the rest sent twice

        def as_received(key: str, part: DeidentifiedPart) -> ArchivedInstance:
            new = copies[key][0] is unique[key][1] and key not in first
            first.add(key)
            update = {"received_key": part.received_key, "already": not new}
            return archived[key].model_copy(update=update)

        await self.bus.publish(
            InstancesArchived(
                project=event.project,
                correlation_id=event.correlation_id,
                instances=tuple(
                    as_received(key, part) for key, part in zip(keys, event.instances, strict=True)
                ),
            )
        )
        await self.store.delete(self.buckets.outgoing, event.object_key)
        INSTANCES.labels("archive", "archived").inc(len(keys))


def _archived(
    key: str,
    part: DeidentifiedPart,
    data: bytes,
    sha256: str,
    metadata: dict[str, object],
    summary: Summary,
) -> ArchivedInstance:
    """What the catalogue learns of one archived instance: the object as it is."""
    return ArchivedInstance(
        object_key=key,
        received_key=part.received_key,
        sha256=sha256,
        size=len(data),
        subject=part.subject,
        study_uid=part.study_uid,
        series_uid=part.series_uid,
        sop_uid=part.sop_uid,
        sop_class_uid=part.sop_class_uid,
        modality=summary.modality,
        study_date=summary.study_date,
        study_description=summary.study_description,
        series_description=summary.series_description,
        series_number=summary.series_number,
        instance_number=summary.instance_number,
        transfer_syntax_uid=summary.transfer_syntax_uid,
        attributes=metadata,
    )

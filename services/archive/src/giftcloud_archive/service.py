from __future__ import annotations

import asyncio

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

from giftcloud_archive.metadata import Summary, describe


class ArchiveService:
    """Lays out each bundle of de-identified instances in the archive: every instance at its
    key (one object each), then one ``instances.archived`` for the bundle carrying each
    instance's DICOM JSON for the catalogue, then the bundle goes from ``outgoing``. Redelivery at any point repeats
    idempotent steps only; a bundle already gone was finished before.
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
        described = await asyncio.to_thread(
            lambda: [
                describe(data, _bulk_uri(event.project, part), self.max_inflated)
                for part, data in zip(event.instances, files, strict=True)
            ]
        )
        limit = asyncio.Semaphore(8)

        async def lay_out(
            key: str,
            part: DeidentifiedPart,
            data: bytes,
            metadata: dict[str, object],
            summary: Summary,
        ) -> ArchivedInstance:
            async with limit:
                await self.store.put(self.buckets.archive, key, data, "application/dicom")
            return ArchivedInstance(
                object_key=key,
                received_key=part.received_key,
                sha256=part.sha256,
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

        async with asyncio.TaskGroup() as group:  # one failure stops the rest: all are retried
            tasks = [
                group.create_task(lay_out(key, part, data, metadata, summary))
                for key, part, data, (metadata, summary) in zip(
                    keys, event.instances, files, described, strict=True
                )
            ]
        await self.bus.publish(
            InstancesArchived(
                project=event.project,
                correlation_id=event.correlation_id,
                instances=tuple(task.result() for task in tasks),
            )
        )
        await self.store.delete(self.buckets.outgoing, event.object_key)
        INSTANCES.labels("archive", "archived").inc(len(tasks))


def _bulk_uri(project: str, part: DeidentifiedPart) -> str:
    return (
        f"/dicomweb/{project}/studies/{part.study_uid}/series/{part.series_uid}"
        f"/instances/{part.sop_uid}/bulk"
    )

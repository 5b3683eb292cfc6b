from __future__ import annotations

import asyncio
import json
import logging

from giftcloud_core.bus import Bus, PermanentFailure
from giftcloud_core.errors import ObjectNotFound
from giftcloud_core.events import Event, InstanceArchived, InstanceDeidentified
from giftcloud_core.metrics import INSTANCES
from giftcloud_core.settings import Settings
from giftcloud_core.storage import ObjectStore, archive_key

from giftcloud_archive.metadata import describe

log = logging.getLogger(__name__)


class ArchiveService:
    """Completes each de-identified instance in the archive: its DICOM JSON metadata beside
    it, then ``instance.archived``. anonymise wrote the instance at its final key; redelivery
    at any point repeats idempotent steps only.
    """

    def __init__(self, settings: Settings, bus: Bus, store: ObjectStore) -> None:
        self.buckets = settings.storage.buckets
        self.bus = bus
        self.store = store

    async def on_deidentified(self, event: Event) -> None:
        if not isinstance(event, InstanceDeidentified):
            return
        key = archive_key(event.project, event.study_uid, event.series_uid, event.sop_uid)
        if event.object_key != key:
            raise PermanentFailure(f"{event.object_key} is not where the archive keeps {key}")
        try:
            data = await self.store.get(self.buckets.archive, key)
        except ObjectNotFound:
            raise PermanentFailure(f"{key} is not in the archive") from None
        bulk = f"/dicomweb/{event.project}/studies/{event.study_uid}/series/{event.series_uid}/instances/{event.sop_uid}/bulk"
        metadata, summary = await asyncio.to_thread(describe, data, bulk)
        metadata_key = key[: -len(".dcm")] + ".json"
        await self.store.put(
            self.buckets.archive,
            metadata_key,
            json.dumps(metadata).encode(),
            "application/dicom+json",
        )
        await self.bus.publish(
            InstanceArchived(
                project=event.project,
                correlation_id=event.correlation_id,
                object_key=key,
                received_key=event.received_key,
                metadata_key=metadata_key,
                sha256=event.sha256,
                size=len(data),
                subject=event.subject,
                study_uid=event.study_uid,
                series_uid=event.series_uid,
                sop_uid=event.sop_uid,
                sop_class_uid=event.sop_class_uid,
                modality=summary.modality,
                study_date=summary.study_date,
                study_description=summary.study_description,
                series_description=summary.series_description,
                series_number=summary.series_number,
                instance_number=summary.instance_number,
                transfer_syntax_uid=summary.transfer_syntax_uid,
            )
        )
        INSTANCES.labels("archive", "archived").inc()

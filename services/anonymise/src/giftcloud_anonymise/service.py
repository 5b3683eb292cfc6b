from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from functools import lru_cache

from giftcloud_core.bus import Bus
from giftcloud_core.db import Database
from giftcloud_core.errors import ObjectNotFound
from giftcloud_core.events import Event, InstanceDeidentified, InstanceReceived, InstanceRejected
from giftcloud_core.metrics import INSTANCES
from giftcloud_core.settings import Settings
from giftcloud_core.storage import ObjectStore
from giftcloud_deid import ProjectKeys, Rejected, deidentify
from sqlalchemy.dialects.postgresql import insert

from giftcloud_anonymise.models import Deidentification

log = logging.getLogger(__name__)


class AnonymiseService:
    """Turns each received (identifiable) instance into a de-identified one, or quarantines it.

    Redelivery is harmless: the output is a pure function of input and key, so a
    second run writes the same object and publishes the same result; an input
    already gone from ``incoming`` was finished before.
    """

    def __init__(self, settings: Settings, db: Database, bus: Bus, store: ObjectStore) -> None:
        secret = settings.anonymise.secret
        if secret is None:
            raise RuntimeError(
                "set GIFTCLOUD_ANONYMISE__SECRET (base64 of at least 32 random bytes): "
                "the site's pseudonymisation secret"
            )
        self._site_secret = base64.b64decode(secret.get_secret_value())
        self.settings = settings
        self.buckets = settings.storage.buckets
        self.db = db
        self.bus = bus
        self.store = store
        self._keys = lru_cache(maxsize=256)(
            lambda project: ProjectKeys.derive(self._site_secret, project)
        )

    def keys(self, project: str) -> ProjectKeys:
        keys: ProjectKeys = self._keys(project)
        return keys

    async def on_received(self, event: Event) -> None:
        if not isinstance(event, InstanceReceived):
            return
        try:
            data = await self.store.get(self.buckets.incoming, event.object_key)
        except ObjectNotFound:
            log.info("%s is no longer in incoming: handled before", event.object_key)
            return
        keys = self.keys(event.project)
        try:
            result = await asyncio.to_thread(deidentify, data, keys)
        except Rejected as exc:
            await self._quarantine(event, data, exc.reason, keys)
            return
        out_key = f"{event.project}/{result.study_uid}/{result.series_uid}/{result.sop_uid}.dcm"
        await self.store.put(self.buckets.outgoing, out_key, result.data, "application/dicom")
        await self.bus.publish(
            InstanceDeidentified(
                project=event.project,
                correlation_id=event.correlation_id,
                object_key=out_key,
                received_key=event.object_key,
                sha256=hashlib.sha256(result.data).hexdigest(),
                size=len(result.data),
                subject=result.subject,
                study_uid=result.study_uid,
                series_uid=result.series_uid,
                sop_uid=result.sop_uid,
                sop_class_uid=result.sop_class_uid,
            )
        )
        await self._record(
            Deidentification(
                object_key=event.object_key,
                project=event.project,
                outcome="deidentified",
                subject=result.subject,
                sop_uid=result.sop_uid,
                key_id=keys.key_id,
            )
        )
        await self.store.delete(self.buckets.incoming, event.object_key)
        INSTANCES.labels("anonymise", "deidentified").inc()

    async def _quarantine(
        self, event: InstanceReceived, data: bytes, reason: str, keys: ProjectKeys
    ) -> None:
        log.warning("rejected %s: %s", event.object_key, reason)
        await self.store.put(self.buckets.quarantine, event.object_key, data)
        await self.bus.publish(
            InstanceRejected(
                project=event.project,
                correlation_id=event.correlation_id,
                object_key=event.object_key,
                reason=reason,
            )
        )
        await self._record(
            Deidentification(
                object_key=event.object_key,
                project=event.project,
                outcome="rejected",
                reason=reason,
                key_id=keys.key_id,
            )
        )
        await self.store.delete(self.buckets.incoming, event.object_key)
        INSTANCES.labels("anonymise", "rejected").inc()

    async def _record(self, row: Deidentification) -> None:
        async with self.db.session() as session:
            values = row.model_dump()
            await session.exec(
                insert(Deidentification)
                .values(**values)
                .on_conflict_do_update(index_elements=["object_key"], set_=values)
            )

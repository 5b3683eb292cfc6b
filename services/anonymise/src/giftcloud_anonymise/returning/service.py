"""A result the site pulled from its hub: about a subject this site sent, or refused (and
not kept); mapped back to the hospital's originals and validated, or held with the reason.
Nothing leaves from here: ingest delivers a ready result once a reidentifier approves it."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable

import pydicom
from giftcloud_core.bundle import pack
from giftcloud_core.bus import Bus
from giftcloud_core.errors import ObjectNotFound
from giftcloud_core.events import Event, ResultArrived, ResultPrepared
from giftcloud_core.settings import Buckets
from giftcloud_core.storage import ObjectStore, archive_key
from giftcloud_deid import ProjectKeys
from giftcloud_deid.reidentify import Unmappable, inverse, reidentify
from giftcloud_deid.vault import VaultRecord

from giftcloud_anonymise.returning.render import CannotRender, masks_by_source, render
from giftcloud_anonymise.returning.validate import iod_errors
from giftcloud_anonymise.vault import Vault

log = logging.getLogger(__name__)


class Returning:
    def __init__(
        self,
        vault: Vault,
        keys_of: Callable[[str], ProjectKeys],
        store: ObjectStore,
        buckets: Buckets,
        bus: Bus,
    ) -> None:
        self.vault = vault
        self.keys_of = keys_of
        self.store = store
        self.buckets = buckets
        self.bus = bus

    async def on_arrived(self, event: Event) -> None:
        if not isinstance(event, ResultArrived):
            return
        outcome, reason, prepared, rendering = await self._prepare(event)
        if outcome == "refused":  # not kept
            await self.store.delete(self.buckets.incoming, event.object_key)
        log.info("result %s of %s: %s %s", event.key, event.project, outcome, reason)
        await self.bus.publish(
            ResultPrepared(
                project=event.project,
                correlation_id=event.correlation_id,
                key=event.key,
                outcome=outcome,
                reason=reason,
                prepared_key=prepared,
                rendering_key=rendering,
            )
        )

    async def _prepare(self, event: ResultArrived) -> tuple[str, str, str, str]:
        """(outcome, reason or a note, the prepared copy's key, its rendering's)."""
        if not event.subject:
            return "refused", "it is attached to the project, not to a subject of this site", "", ""
        if not await self.vault.knows(event.project, event.subject):
            return "refused", f"subject {event.subject} was never sent from this site", "", ""
        if event.kind == "file":  # delivered as it is, to whoever approves it
            return "ready", "", event.object_key, ""
        if self.vault.opener is None:
            return "held", "this site has no vault private key to map results back", "", ""
        data = await self.store.get(self.buckets.incoming, event.object_key)
        records, originals = await self.vault.subject(
            event.project, event.subject, f"result {event.key}"
        )
        keys = self.keys_of(event.project)
        try:
            mapped = await asyncio.to_thread(reidentify, data, keys, records, originals)
        except Unmappable as exc:
            return "held", f"its references cannot all be mapped back: {exc}", "", ""
        errors = await iod_errors(mapped)
        if errors:
            why = "not a valid instance of its kind (dciodvfy): " + "; ".join(errors)
            return "held", why, "", ""
        prepared = event.object_key.removesuffix(".dcm") + ".reidentified.dcm"
        await self.store.put(self.buckets.incoming, prepared, mapped)
        note = ""
        if _is_segmentation(mapped):
            try:
                rendering = await self._render(event, data, mapped, keys, records, originals)
            except CannotRender as exc:
                note = f"no rendering: {exc}"
            else:
                await self.store.put(self.buckets.incoming, prepared + ".rendering", rendering)
                return "ready", "", prepared, prepared + ".rendering"
        return "ready", note, prepared, ""

    async def _render(
        self,
        event: ResultArrived,
        data: bytes,
        mapped: bytes,
        keys: ProjectKeys,
        records: list[VaultRecord],
        originals: set[str],
    ) -> bytes:
        """The secondary captures of a segmentation, over the site's own copies of its
        sources, each validated; one bundle."""
        hub = pydicom.dcmread(io.BytesIO(data))
        masks = await asyncio.to_thread(masks_by_source, hub)
        series_of = {
            str(instance.ReferencedSOPInstanceUID): str(series.SeriesInstanceUID)
            for series in hub.get("ReferencedSeriesSequence", [])
            for instance in series.get("ReferencedInstanceSequence", [])
        }
        sources: dict[str, bytes] = {}
        for sop, _ in masks:
            if sop in sources:
                continue
            if sop not in series_of:
                raise CannotRender(f"its source image {sop} is not in its referenced series")
            key = archive_key(event.project, str(hub.StudyInstanceUID), series_of[sop], sop)
            try:
                sources[sop] = await self.store.get(self.buckets.archive, key)
            except ObjectNotFound:
                raise CannotRender(
                    f"its source image {sop} is not in this site's archive"
                ) from None
        result = pydicom.dcmread(io.BytesIO(mapped))
        back = inverse(keys, records, originals)
        captures = await asyncio.to_thread(render, result, masks, sources, back, keys)
        for capture in captures:
            errors = await iod_errors(capture)
            if errors:
                raise CannotRender(
                    "a rendering is not a valid secondary capture: " + "; ".join(errors)
                )
        return pack(captures)


#: what is rendered as secondary captures for a PACS that cannot show it
SEGMENTATIONS = ("1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.66.7")


def _is_segmentation(data: bytes) -> bool:
    header = pydicom.dcmread(
        io.BytesIO(data), stop_before_pixels=True, specific_tags=["SOPClassUID"]
    )
    return str(header.get("SOPClassUID", "")) in SEGMENTATIONS

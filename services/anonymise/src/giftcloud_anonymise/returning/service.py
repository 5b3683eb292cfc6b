"""A result the site pulled from its hub: about a subject this site sent, or refused (and
not kept); mapped back to the hospital's originals and validated, or held with the reason.
Nothing leaves from here: ingest delivers a ready result once a reidentifier approves it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from giftcloud_core.bundle import pack
from giftcloud_core.bus import Bus
from giftcloud_core.errors import ObjectNotFound
from giftcloud_core.events import Event, ResultArrived, ResultPrepared
from giftcloud_core.settings import Buckets
from giftcloud_core.storage import ObjectStore, archive_key
from giftcloud_deid import ProjectKeys
from giftcloud_deid.reidentify import Unmappable, inverse, read, reidentify
from pydicom.dataset import Dataset

from giftcloud_anonymise.returning.render import SEGMENTATIONS, CannotRender, Plan, render
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
        try:
            ds = read(await self.store.get(self.buckets.incoming, event.object_key))
        except Unmappable as exc:
            return "held", str(exc), "", ""
        plan, note = None, ""
        if str(ds.get("SOPClassUID", "")) in SEGMENTATIONS:  # read before it is mapped
            try:
                plan = await asyncio.to_thread(Plan.of, ds)
            except CannotRender as exc:
                note = f"no rendering: {exc}"
        records, originals = await self.vault.subject(
            event.project, event.subject, f"result {event.key}"
        )
        keys = self.keys_of(event.project)
        back = inverse(keys, records, originals)
        try:
            mapped = await asyncio.to_thread(reidentify, ds, keys, records, back)
        except Unmappable as exc:
            return "held", f"its references cannot all be mapped back: {exc}", "", ""
        errors = await iod_errors(mapped)
        if errors:
            why = "not a valid instance of its kind (dciodvfy): " + "; ".join(errors)
            return "held", why, "", ""
        prepared = event.object_key.removesuffix(".dcm") + ".reidentified.dcm"
        await self.store.put(self.buckets.incoming, prepared, mapped)
        if plan is None:
            return "ready", note, prepared, ""
        try:
            rendering = await self._render(event.project, plan, ds, keys, back)
        except CannotRender as exc:
            return "ready", f"no rendering: {exc}", prepared, ""
        await self.store.put(self.buckets.incoming, prepared + ".rendering", rendering)
        return "ready", "", prepared, prepared + ".rendering"

    async def _render(
        self, project: str, plan: Plan, mapped: Dataset, keys: ProjectKeys, back: dict[str, str]
    ) -> bytes:
        """The secondary captures of a segmentation (``mapped``: mapped back), over the
        site's own copies of its sources, each validated; one bundle."""
        sources: dict[str, bytes] = {}
        for sop, (study, series) in plan.sources.items():
            try:
                sources[sop] = await self.store.get(
                    self.buckets.archive, archive_key(project, study, series, sop)
                )
            except ObjectNotFound:
                raise CannotRender(
                    f"its source image {sop} is not in this site's archive"
                ) from None
        captures = await asyncio.to_thread(render, mapped, plan.masks, sources, back, keys)
        for capture in captures:
            errors = await iod_errors(capture)
            if errors:
                raise CannotRender(
                    "a rendering is not a valid secondary capture: " + "; ".join(errors)
                )
        return pack(captures)

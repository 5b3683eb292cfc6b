"""The quarantine of a project: the instances de-identification refused (their bytes in the
``quarantine`` bucket, why in the de-identification log), for its owners to review.

Releasing one sends it through de-identification again, as it arrived, under the project's
rules of now (an owner changed an option or attested its kind of image): it ends archived,
its upload saying so, or back here with the reason of now. Deleting one removes its bytes
for good. Each step first claims the log's row (``rejected`` → ``released``/``deleted``), so
two owners never act twice on one instance, and a step that fails gives the row back.
"""

from __future__ import annotations

import hashlib
import logging
from io import BytesIO
from typing import Literal
from uuid import uuid4

import pydicom
from giftcloud_core.bundle import pack, upload_of
from giftcloud_core.bus import Bus
from giftcloud_core.db import Database
from giftcloud_core.errors import Conflict, NotFound, ObjectNotFound
from giftcloud_core.events import InstancesReceived, QuarantineCleared, ReceivedPart
from giftcloud_core.settings import Buckets
from giftcloud_core.storage import ObjectStore
from pydicom.errors import InvalidDicomError
from sqlalchemy import update
from sqlmodel import col, select

from giftcloud_anonymise.models import Deidentification
from giftcloud_anonymise.quarantine.schemas import Described, Held

log = logging.getLogger(__name__)

#: the most a page lists at once (the oldest first wait longest)
LISTED = 500


def _index(key: str) -> int | None:
    stem = key.rsplit("/", 1)[-1].removesuffix(".dcm")
    return int(stem) if upload_of(key) and stem.isdigit() else None


def describe(key: str, reason: str, data: bytes) -> Described:
    """The kind of image a held instance is, read from its header (no patient attribute)."""
    ds: pydicom.Dataset
    try:
        ds = pydicom.dcmread(BytesIO(data), stop_before_pixels=True, force=True)
    except (InvalidDicomError, ValueError, EOFError, OSError):
        ds = pydicom.Dataset()

    def text(keyword: str) -> str:
        value = ds.get(keyword, "")
        if isinstance(value, pydicom.multival.MultiValue):
            return "\\".join(str(v) for v in value)
        return str(value)

    def number(keyword: str) -> int | None:
        try:
            return int(ds.get(keyword)) if keyword in ds else None
        except (TypeError, ValueError):
            return None

    sop_class = ds.get("SOPClassUID")
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    return Described(
        key=key,
        reason=reason,
        modality=text("Modality"),
        sop_class=sop_class.name if isinstance(sop_class, pydicom.uid.UID) else "",
        manufacturer=text("Manufacturer"),
        model=text("ManufacturerModelName"),
        image_type=text("ImageType"),
        burned_in_annotation=text("BurnedInAnnotation"),
        rows=number("Rows"),
        columns=number("Columns"),
        frames=number("NumberOfFrames"),
        transfer_syntax=syntax.name if isinstance(syntax, pydicom.uid.UID) else "",
        size=len(data),
    )


class Quarantine:
    def __init__(self, db: Database, bus: Bus, store: ObjectStore, buckets: Buckets):
        self.db = db
        self.bus = bus
        self.store = store
        self.buckets = buckets

    async def held(self, project: str) -> list[Held]:
        async with self.db.session() as session:
            rows = (
                await session.exec(
                    select(Deidentification)
                    .where(
                        Deidentification.project == project,
                        col(Deidentification.outcome).in_(("rejected", "released")),
                    )
                    .order_by(col(Deidentification.created_at))
                    .limit(LISTED)
                )
            ).all()
        return [
            Held(
                key=row.object_key,
                upload=upload_of(row.object_key),
                index=_index(row.object_key),
                reason=row.reason,
                state="held" if row.outcome == "rejected" else "released",
                since=row.created_at,
            )
            for row in rows
        ]

    async def described(self, project: str, key: str) -> Described:
        row = await self._row(project, key)
        try:
            data = await self.store.get(self.buckets.quarantine, key)
        except ObjectNotFound:
            raise NotFound(f"{key} is no longer held") from None
        return describe(key, row.reason, data)

    async def release(self, project: str, keys: list[str], by: str) -> list[str]:
        """Send ``keys`` through de-identification again, as one bundle; the keys released."""
        keys = await self._claim(project, keys, "released")
        try:
            files = [await self.store.get(self.buckets.quarantine, key) for key in keys]
            bundle = f"{project}/release/{uuid4().hex}.bundle"
            await self.store.put(self.buckets.incoming, bundle, pack(files))
            await self.bus.publish(
                InstancesReceived(
                    project=project,
                    correlation_id=upload_of(keys[0]) or bundle,
                    object_key=bundle,
                    parts=tuple(
                        ReceivedPart(
                            name=key, sha256=hashlib.sha256(data).hexdigest(), size=len(data)
                        )
                        for key, data in zip(keys, files, strict=True)
                    ),
                    source="release",
                )
            )
        except BaseException:
            await self._give_back(project, "released", keys)
            raise
        await self._cleared(project, keys, "released", by)
        log.warning("%s released %d instance(s) of %s from quarantine", by, len(keys), project)
        return keys

    async def delete(self, project: str, keys: list[str], by: str) -> list[str]:
        """Remove ``keys`` for good; the keys deleted."""
        keys = await self._claim(project, keys, "deleted")
        try:
            for key in keys:
                await self.store.delete(self.buckets.quarantine, key)
        except BaseException:
            await self._give_back(project, "deleted", keys)
            raise
        await self._cleared(project, keys, "deleted", by)
        log.warning("%s deleted %d instance(s) of %s from quarantine", by, len(keys), project)
        return keys

    async def _row(self, project: str, key: str) -> Deidentification:
        async with self.db.session() as session:
            row = await session.get(Deidentification, key)
        if row is None or row.project != project or row.outcome not in ("rejected", "released"):
            raise NotFound(f"{key} is not held in the quarantine of {project!r}")
        return row

    async def _claim(self, project: str, keys: list[str], outcome: str) -> list[str]:
        """Every key's row from ``rejected`` to ``outcome``, or none of them (Conflict or
        NotFound naming the first that is not waiting); the keys claimed."""
        unique = list(dict.fromkeys(keys))
        async with self.db.session() as session:
            rows = (
                await session.exec(
                    select(Deidentification)
                    .where(col(Deidentification.object_key).in_(unique))
                    .with_for_update()
                )
            ).all()
            found = {row.object_key: row for row in rows if row.project == project}
            for key in unique:
                row = found.get(key)
                if row is None or row.outcome not in ("rejected", "released"):
                    raise NotFound(f"{key} is not held in the quarantine of {project!r}")
                if row.outcome == "released":
                    raise Conflict(f"{key} was released already: it is being processed again")
            await session.exec(
                update(Deidentification)
                .where(col(Deidentification.object_key).in_(unique))
                .values(outcome=outcome)
            )
        return unique

    async def _give_back(self, project: str, outcome: str, keys: list[str]) -> None:
        async with self.db.session() as session:
            await session.exec(
                update(Deidentification)
                .where(
                    col(Deidentification.object_key).in_(keys),
                    col(Deidentification.project) == project,
                    col(Deidentification.outcome) == outcome,
                )
                .values(outcome="rejected")
            )

    async def _cleared(
        self, project: str, keys: list[str], how: Literal["released", "deleted"], by: str
    ) -> None:
        await self.bus.publish(
            QuarantineCleared(
                project=project,
                correlation_id=upload_of(keys[0]) or project,
                object_keys=tuple(keys),
                how=how,
                by=by,
            )
        )

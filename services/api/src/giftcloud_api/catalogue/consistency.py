"""The catalogue and the archive agree: a row describes the object at its key (size,
checksum, transfer syntax, metadata). :func:`settle` decides a race of two first copies by
the object; :func:`repair` (``giftcloud repair``) finds and fixes rows an older version left
describing another copy."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

from giftcloud_core.db import Database
from giftcloud_core.errors import ObjectNotFound
from giftcloud_core.storage import ObjectStore
from giftcloud_dicom.metadata import bulk_uri, describe

from giftcloud_api.catalogue import reads, writes
from giftcloud_api.models import Instance

log = logging.getLogger(__name__)


async def settle(
    db: Database, store: ObjectStore, bucket: str, disagreeing: list[dict[str, Any]]
) -> None:
    """Rows whose event named another copy: the row follows the object when the object is
    that copy (two first copies laid out at the same moment)."""
    for row in disagreeing:
        try:
            data = await store.get(bucket, row["object_key"])
        except ObjectNotFound:
            continue
        if hashlib.sha256(data).hexdigest() == row["sha256"]:
            async with db.session() as session:
                await writes.replace_instance(session, row)
            log.warning("%s: the catalogue now describes the copy archived", row["sop_uid"])


async def repair(
    db: Database,
    store: ObjectStore,
    bucket: str,
    max_inflated: int,
    project: str | None = None,
    *,
    fix: bool = True,
) -> dict[str, int]:
    """Compare every instance's row with its object (size and checksum); where they
    disagree, describe the object as it is (with ``fix``). Counts of what was found."""
    counts = {"checked": 0, "disagreeing": 0, "fixed": 0, "missing": 0}
    after = ("", "")
    while True:
        async with db.session() as session:
            rows = await reads.instance_page(session, project, after, 200)
        if not rows:
            return counts
        after = (rows[-1].project, rows[-1].sop_uid)
        for row in rows:
            counts["checked"] += 1
            try:
                data = await store.get(bucket, row.object_key)
            except ObjectNotFound:
                counts["missing"] += 1
                log.error("%s: no object at %s", row.sop_uid, row.object_key)
                continue
            sha256 = hashlib.sha256(data).hexdigest()
            if sha256 == row.sha256 and len(data) == row.size:
                continue
            counts["disagreeing"] += 1
            log.warning("%s: its row describes another copy than %s", row.sop_uid, row.object_key)
            if fix:
                counts["fixed"] += await _describe_again(db, row, data, sha256, max_inflated)


async def _describe_again(
    db: Database, row: Instance, data: bytes, sha256: str, max_inflated: int
) -> int:
    uri = bulk_uri(row.project, row.study_uid, row.series_uid, row.sop_uid)
    attributes, summary = await asyncio.to_thread(describe, data, uri, max_inflated)
    fixed = {
        "project": row.project,
        "sop_uid": row.sop_uid,
        "object_key": row.object_key,
        "size": len(data),
        "sha256": sha256,
        "transfer_syntax_uid": summary.transfer_syntax_uid,
        "attributes": attributes,
    }
    async with db.session() as session:
        return int(await writes.replace_instance(session, fixed))

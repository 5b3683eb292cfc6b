"""Zip downloads of archived instances, streamed (zipstream-ng): entries are stored, not
deflated (pixels rarely compress), their sizes known from the catalogue, so the length of
the whole zip is known before its first byte and the server holds one instance at a time."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass

import anyio.from_thread
from fastapi.responses import StreamingResponse
from giftcloud_core.storage import ObjectStore
from zipstream import ZIP_STORED, ZipStream

log = logging.getLogger(__name__)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class Entry:
    """One instance to put in a zip."""

    subject: str
    study_uid: str
    series_uid: str
    sop_uid: str
    object_key: str
    size: int
    #: an attached file: its name, put under ``files/`` where it is attached
    file_name: str = ""

    @property
    def name(self) -> str:
        """``subject/study/series/sop.dcm``, an attached file ``[subject/[study/[series/]]]
        files/name``; a subject label from a hub's senders and a file's name are made safe
        as path components (UIDs are validated where they come in)."""
        subject = _UNSAFE.sub("_", self.subject).lstrip(".") or "_"
        if self.file_name:
            where = [subject] if self.subject else []
            where += [uid for uid in (self.study_uid, self.series_uid) if uid]
            return "/".join([*where, "files", _UNSAFE.sub("_", self.file_name).lstrip(".") or "_"])
        return f"{subject}/{self.study_uid}/{self.series_uid}/{self.sop_uid}.dcm"


class _ReadAhead:
    """Objects fetched a few ahead of the one the zip is writing, so reading the store and
    sending overlap; memory: ``depth`` instances at most."""

    def __init__(self, store: ObjectStore, bucket: str, keys: list[str], depth: int = 4) -> None:
        self.store, self.bucket, self.keys, self.depth = store, bucket, keys, depth
        self.fetching: dict[int, asyncio.Task[bytes]] = {}

    async def get(self, index: int) -> bytes:
        for ahead in range(index, min(index + self.depth, len(self.keys))):
            if ahead not in self.fetching:
                fetch = self.store.get(self.bucket, self.keys[ahead])
                self.fetching[ahead] = asyncio.ensure_future(fetch)
        return await self.fetching.pop(index)

    def close(self) -> None:
        for task in self.fetching.values():
            task.cancel()


class ObjectChanged(RuntimeError):
    """An object is not the size the catalogue promised: the zip stops short of its
    Content-Length (the client sees an incomplete transfer), never a silent cut."""


def _read(ahead: _ReadAhead, index: int, size: int) -> Iterator[bytes]:
    """An instance's bytes, when the zip reaches it (the zip is written in a worker thread;
    the store is asynchronous)."""
    data = anyio.from_thread.run(ahead.get, index)
    if len(data) != size:
        anyio.from_thread.run_sync(ahead.close)
        log.error(
            "zip aborted: %s is %d bytes, the catalogue says %d (giftcloud repair fixes this)",
            ahead.keys[index],
            len(data),
            size,
        )
        raise ObjectChanged(f"{ahead.keys[index]} is not the size the catalogue gives")
    yield data
    if index == len(ahead.keys) - 1:
        anyio.from_thread.run_sync(ahead.close)


def zip_of(store: ObjectStore, bucket: str, entries: list[Entry]) -> ZipStream:
    stream = ZipStream(compress_type=ZIP_STORED, sized=True)
    ahead = _ReadAhead(store, bucket, [e.object_key for e in entries])
    for index, entry in enumerate(entries):
        stream.add(_read(ahead, index, entry.size), entry.name, size=entry.size)
    return stream


def filename(*parts: str | None) -> str:
    return "-".join(_UNSAFE.sub("_", p) for p in parts if p)[:150] + ".zip"


def zip_response(stream: ZipStream, name: str, head: bool = False) -> StreamingResponse:
    """The zip as the answer (a HEAD: its length only). Starlette iterates a synchronous
    stream in a worker thread."""
    headers = {
        "Content-Length": str(len(stream)),
        "Content-Disposition": f'attachment; filename="{name}"',
        # zipstream-ng writes from the start only: a Range is answered with the whole zip
        # (RFC 9110 lets a server ignore it), and clients are told so up front
        "Accept-Ranges": "none",
    }
    body: Iterator[bytes] = iter(()) if head else iter(stream)
    return StreamingResponse(body, media_type="application/zip", headers=headers)

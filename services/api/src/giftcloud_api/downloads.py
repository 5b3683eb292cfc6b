"""Zip downloads of archived instances, streamed (zipstream-ng): entries are stored, not
deflated (pixels rarely compress), their sizes known from the catalogue, so the length of
the whole zip is known before its first byte and the server holds one instance at a time."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import anyio.from_thread
from fastapi.responses import StreamingResponse
from giftcloud_core.storage import ObjectStore
from zipstream import ZIP_STORED, ZipStream

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

    @property
    def name(self) -> str:
        """``subject/study/series/sop.dcm``; a subject label from a hub's senders is made
        safe as a path component (UIDs are validated where they come in)."""
        subject = _UNSAFE.sub("_", self.subject).lstrip(".") or "_"
        return f"{subject}/{self.study_uid}/{self.series_uid}/{self.sop_uid}.dcm"


def _read(store: ObjectStore, bucket: str, entry: Entry) -> Iterator[bytes]:
    """An instance's bytes, fetched when the zip reaches it (the zip is written in a worker
    thread; the store is asynchronous)."""
    yield anyio.from_thread.run(store.get, bucket, entry.object_key)


def zip_of(store: ObjectStore, bucket: str, entries: list[Entry]) -> ZipStream:
    stream = ZipStream(compress_type=ZIP_STORED, sized=True)
    for entry in entries:
        stream.add(_read(store, bucket, entry), entry.name, size=entry.size)
    return stream


def filename(*parts: str | None) -> str:
    return "-".join(_UNSAFE.sub("_", p) for p in parts if p)[:150] + ".zip"


def zip_response(stream: ZipStream, name: str, head: bool = False) -> StreamingResponse:
    """The zip as the answer (a HEAD: its length only). Starlette iterates a synchronous
    stream in a worker thread."""
    headers = {
        "Content-Length": str(len(stream)),
        "Content-Disposition": f'attachment; filename="{name}"',
    }
    body: Iterator[bytes] = iter(()) if head else iter(stream)
    return StreamingResponse(body, media_type="application/zip", headers=headers)

"""Many files in one object: ingest stores the instances of an upload in bundles in
``incoming`` and anonymise its results in ``outgoing``, so that one object and one message
carry many instances.

The format is a magic line, the number of files, then for each file its length and its bytes
(numbers as 8 bytes, big-endian).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from giftcloud_core.bus.base import PermanentFailure
from giftcloud_core.errors import ObjectNotFound
from giftcloud_core.storage.base import ObjectStore

log = logging.getLogger(__name__)

MAGIC = b"giftcloud-bundle-1\n"
_LENGTH = 8


class MalformedBundle(ValueError):
    """Bytes that are not a whole bundle."""


def upload_of(name: str) -> str | None:
    """The upload a received part belongs to, from its name (``{project}/{upload}/{n}.dcm``)."""
    parts = name.split("/")
    return parts[1] if len(parts) == 3 and parts[2].endswith(".dcm") else None


def pack(files: Sequence[bytes]) -> bytes:
    chunks = [MAGIC, len(files).to_bytes(_LENGTH, "big")]
    for data in files:
        chunks += [len(data).to_bytes(_LENGTH, "big"), data]
    return b"".join(chunks)


def unpack(bundle: bytes) -> list[bytes]:
    """The files, all of them: a bundle cut anywhere (even between two files) is refused."""
    if not bundle.startswith(MAGIC):
        raise MalformedBundle("not a giftcloud bundle")
    if len(bundle) < len(MAGIC) + _LENGTH:
        raise MalformedBundle("truncated in its header")
    view = memoryview(bundle)
    offset = len(MAGIC) + _LENGTH
    count = int.from_bytes(view[len(MAGIC) : offset], "big")
    files: list[bytes] = []
    while len(files) < count:
        if offset + _LENGTH > len(bundle):
            raise MalformedBundle(f"truncated after {len(files)} of {count} files")
        size = int.from_bytes(view[offset : offset + _LENGTH], "big")
        offset += _LENGTH
        if offset + size > len(bundle):
            raise MalformedBundle(f"truncated in file {len(files) + 1} of {count}")
        files.append(bytes(view[offset : offset + size]))
        offset += size
    if offset != len(bundle):
        raise MalformedBundle(f"{len(bundle) - offset} bytes after the last of {count} files")
    return files


async def fetch(store: ObjectStore, bucket: str, key: str, count: int) -> list[bytes] | None:
    """The ``count`` files of the bundle an event names, or None when the bundle is gone (its
    consumer finished it before: redelivery). A bundle that is not what its event says is a
    :class:`PermanentFailure`: no retry mends it, and it stays where it is for an operator."""
    try:
        bundle = await store.get(bucket, key)
    except ObjectNotFound:
        log.info("%s is no longer in %s: finished before", key, bucket)
        return None
    try:
        files = unpack(bundle)
    except MalformedBundle as exc:
        raise PermanentFailure(f"{key}: {exc}") from exc
    if len(files) != count:
        raise PermanentFailure(f"{key} holds {len(files)} files, its event names {count}")
    return files

"""Many files in one object: ingest stores the instances of an upload as one bundle in
``incoming``, so one object and one message carry them all.

The format is a magic line, then for each file its length (8 bytes, big-endian) and its bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

MAGIC = b"giftcloud-bundle-1\n"
_LENGTH = 8


class MalformedBundle(ValueError):
    """Bytes that are not a whole bundle."""


def pack(files: Sequence[bytes]) -> bytes:
    chunks = [MAGIC]
    for data in files:
        chunks += [len(data).to_bytes(_LENGTH, "big"), data]
    return b"".join(chunks)


def unpack(bundle: bytes) -> list[bytes]:
    if not bundle.startswith(MAGIC):
        raise MalformedBundle("not a giftcloud bundle")
    view = memoryview(bundle)
    files: list[bytes] = []
    offset = len(MAGIC)
    while offset < len(bundle):
        if offset + _LENGTH > len(bundle):
            raise MalformedBundle(f"truncated at byte {offset}: no whole length")
        size = int.from_bytes(view[offset : offset + _LENGTH], "big")
        offset += _LENGTH
        if offset + size > len(bundle):
            raise MalformedBundle(f"truncated at byte {offset}: a file of {size} bytes is cut")
        files.append(bytes(view[offset : offset + size]))
        offset += size
    return files

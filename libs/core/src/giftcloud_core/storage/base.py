from __future__ import annotations

from typing import Protocol

from giftcloud_core.errors import BadRequest

MAX_KEY_LENGTH = 1024


class InvalidKey(BadRequest):
    """An object key that could leave its place: ``..``, a leading ``/``, a control character."""


def check_key(key: str, *, prefix: bool = False) -> str:
    """``key`` itself when it is a plain relative key; :class:`InvalidKey` otherwise.

    Every store checks every key, so no caller can reach outside its bucket or into another
    project's keys, whatever the key was built from. ``prefix``: an empty key or one ending
    in ``/`` is a prefix to list under.
    """
    problem = None
    if not key and not prefix:
        problem = "it is empty"
    elif len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_LENGTH:
        problem = f"it is longer than {MAX_KEY_LENGTH} bytes"
    elif key.startswith("/"):
        problem = "it starts with '/'"
    elif any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        problem = "it holds a control character"
    elif "\\" in key:
        problem = "it holds a backslash"
    else:
        segments = key.split("/")
        if prefix and segments[-1] == "":
            segments.pop()
        if any(s in ("", ".", "..") for s in segments) and key:
            problem = "it has an empty, '.' or '..' segment"
    if problem is not None:
        raise InvalidKey(f"object key {key[:120]!r} refused: {problem}")
    return key


class ObjectStore(Protocol):
    async def ensure_buckets(self, buckets: list[str]) -> None:
        """Create the buckets that do not exist."""

    async def put(
        self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> None:
        """Store ``data`` whole under ``key``: readers see all of it or nothing."""

    async def get(self, bucket: str, key: str) -> bytes:
        """The object's bytes; :class:`giftcloud_core.errors.ObjectNotFound` if absent."""

    async def exists(self, bucket: str, key: str) -> bool:
        """True if the object exists."""

    async def delete(self, bucket: str, key: str) -> None:
        """Remove the object; removing an absent object is no error."""

    async def list(self, bucket: str, prefix: str = "") -> list[str]:
        """Keys under ``prefix``, sorted."""

    async def ping(self) -> bool:
        """True when the store answers."""

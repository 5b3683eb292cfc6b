from __future__ import annotations

from typing import Protocol


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

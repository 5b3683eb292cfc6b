from __future__ import annotations

from giftcloud_core.crypto import EnvelopeCipher
from giftcloud_core.storage.base import ObjectStore


class EncryptedObjectStore:
    """Encrypts the objects of some buckets at rest (envelope encryption, key authenticated)."""

    def __init__(
        self, inner: ObjectStore, cipher: EnvelopeCipher | None, encrypted_buckets: frozenset[str]
    ) -> None:
        self.inner = inner
        self.cipher = cipher
        self.encrypted_buckets = encrypted_buckets

    def _cipher_for(self, bucket: str) -> EnvelopeCipher | None:
        if bucket not in self.encrypted_buckets:
            return None
        if self.cipher is None:
            raise RuntimeError(
                f"bucket {bucket!r} must be encrypted at rest: set GIFTCLOUD_STORAGE__ENCRYPTION_KEY"
            )
        return self.cipher

    async def ensure_buckets(self, buckets: list[str]) -> None:
        await self.inner.ensure_buckets(buckets)

    async def put(
        self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> None:
        cipher = self._cipher_for(bucket)
        if cipher is not None:
            data = cipher.encrypt(data, f"{bucket}/{key}".encode())
            content_type = "application/octet-stream"
        await self.inner.put(bucket, key, data, content_type)

    async def get(self, bucket: str, key: str) -> bytes:
        data = await self.inner.get(bucket, key)
        cipher = self._cipher_for(bucket)
        return data if cipher is None else cipher.decrypt(data, f"{bucket}/{key}".encode())

    async def exists(self, bucket: str, key: str) -> bool:
        return await self.inner.exists(bucket, key)

    async def delete(self, bucket: str, key: str) -> None:
        await self.inner.delete(bucket, key)

    async def list(self, bucket: str, prefix: str = "") -> list[str]:
        return await self.inner.list(bucket, prefix)

    async def ping(self) -> bool:
        return await self.inner.ping()

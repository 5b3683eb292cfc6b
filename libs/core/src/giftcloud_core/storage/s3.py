from __future__ import annotations

import asyncio
import io

import urllib3
from minio import Minio
from minio.error import S3Error

from giftcloud_core.errors import ObjectNotFound
from giftcloud_core.settings import StorageSettings
from giftcloud_core.storage.base import check_key

_MISSING = {"NoSuchKey", "NoSuchObject", "NoSuchBucket"}


class S3ObjectStore:
    """S3 through the ``minio`` client (sync), run in worker threads."""

    def __init__(self, settings: StorageSettings) -> None:
        http = urllib3.PoolManager(
            maxsize=32,
            timeout=urllib3.Timeout(connect=5, read=60),
            retries=urllib3.Retry(
                total=3, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]
            ),
        )
        self._client = Minio(
            settings.endpoint,
            access_key=settings.access_key.get_secret_value(),
            secret_key=settings.secret_key.get_secret_value(),
            secure=settings.secure,
            region=settings.region,
            http_client=http,
        )

    async def ensure_buckets(self, buckets: list[str]) -> None:
        for bucket in buckets:
            if not await asyncio.to_thread(self._client.bucket_exists, bucket):
                try:
                    await asyncio.to_thread(self._client.make_bucket, bucket)
                except S3Error as exc:  # another replica made it first
                    if exc.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                        raise

    async def put(
        self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> None:
        await asyncio.to_thread(
            self._client.put_object,
            bucket,
            check_key(key),
            io.BytesIO(data),
            len(data),
            content_type,
        )

    def _get(self, bucket: str, key: str) -> bytes:
        try:
            response = self._client.get_object(bucket, check_key(key))
        except S3Error as exc:
            if exc.code in _MISSING:
                raise ObjectNotFound(f"no object {bucket}/{key}") from exc
            raise
        try:
            return bytes(response.read())
        finally:
            response.close()
            response.release_conn()

    async def get(self, bucket: str, key: str) -> bytes:
        return await asyncio.to_thread(self._get, bucket, key)

    def _exists(self, bucket: str, key: str) -> bool:
        try:
            self._client.stat_object(bucket, check_key(key))
        except S3Error as exc:
            if exc.code in _MISSING:
                return False
            raise
        return True

    async def exists(self, bucket: str, key: str) -> bool:
        return await asyncio.to_thread(self._exists, bucket, key)

    async def delete(self, bucket: str, key: str) -> None:
        await asyncio.to_thread(self._client.remove_object, bucket, check_key(key))

    def _list(self, bucket: str, prefix: str) -> list[str]:
        return sorted(
            str(o.object_name)
            for o in self._client.list_objects(
                bucket, prefix=check_key(prefix, prefix=True), recursive=True
            )
        )

    async def list(self, bucket: str, prefix: str = "") -> list[str]:
        return await asyncio.to_thread(self._list, bucket, prefix)

    async def ping(self) -> bool:
        try:
            await asyncio.to_thread(self._client.list_buckets)
        except Exception:
            return False
        return True

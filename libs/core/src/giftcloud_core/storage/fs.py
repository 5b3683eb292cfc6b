from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from giftcloud_core.errors import ObjectNotFound
from giftcloud_core.storage.base import InvalidKey, check_key


class FileObjectStore:
    """Objects as files under ``root/<bucket>/<key>``, written atomically (temp file + rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, bucket: str, key: str) -> Path:
        path = (self.root / bucket / check_key(key)).resolve()
        if not path.is_relative_to((self.root / bucket).resolve()):  # a symlink, say
            raise InvalidKey(f"object key {key!r} leaves its bucket")
        return path

    async def ensure_buckets(self, buckets: list[str]) -> None:
        for bucket in buckets:
            (self.root / bucket).mkdir(parents=True, exist_ok=True)

    async def put(
        self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> None:
        await asyncio.to_thread(self._put, self._path(bucket, key), data)

    @staticmethod
    def _put(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def get(self, bucket: str, key: str) -> bytes:
        path = self._path(bucket, key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError as exc:
            raise ObjectNotFound(f"no object {bucket}/{key}") from exc

    async def exists(self, bucket: str, key: str) -> bool:
        return self._path(bucket, key).is_file()

    async def delete(self, bucket: str, key: str) -> None:
        self._path(bucket, key).unlink(missing_ok=True)

    async def list(self, bucket: str, prefix: str = "") -> list[str]:
        check_key(prefix, prefix=True)
        base = self.root / bucket
        if not base.is_dir():
            return []
        keys = (
            p.relative_to(base).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".tmp-")
        )
        return sorted(k for k in keys if k.startswith(prefix))

    async def ping(self) -> bool:
        return self.root.is_dir()

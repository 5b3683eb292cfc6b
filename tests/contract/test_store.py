"""One suite, two object stores: a folder and S3 (SeaweedFS, through the minio client)."""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from giftcloud_core.crypto import EnvelopeCipher
from giftcloud_core.errors import ObjectNotFound
from giftcloud_core.settings import StorageSettings
from giftcloud_core.storage import (
    EncryptedObjectStore,
    FileObjectStore,
    InvalidKey,
    ObjectStore,
    S3ObjectStore,
)
from support.infra import Seaweed


@pytest.fixture(params=["fs", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    if request.param == "fs":
        yield FileObjectStore(tmp_path / "objects")
    else:
        seaweed: Seaweed = request.getfixturevalue("seaweed")
        yield S3ObjectStore(StorageSettings(endpoint=seaweed.endpoint))


@pytest.fixture
def bucket() -> str:
    return f"gc-contract-{uuid.uuid4().hex[:8]}"


async def test_put_get_list_delete(store: ObjectStore, bucket: str) -> None:
    await store.ensure_buckets([bucket])
    await store.ensure_buckets([bucket])  # idempotent
    payload = os.urandom(70_000)
    await store.put(bucket, "p/s1/a.dcm", payload)
    await store.put(bucket, "p/s2/b.dcm", b"b")
    await store.put(bucket, "q/c.dcm", b"")
    assert await store.get(bucket, "p/s1/a.dcm") == payload
    assert await store.get(bucket, "q/c.dcm") == b""
    assert await store.exists(bucket, "p/s2/b.dcm")
    assert await store.list(bucket, "p/") == ["p/s1/a.dcm", "p/s2/b.dcm"]
    await store.delete(bucket, "p/s1/a.dcm")
    await store.delete(bucket, "p/s1/a.dcm")  # absent: no error
    assert not await store.exists(bucket, "p/s1/a.dcm")
    with pytest.raises(ObjectNotFound):
        await store.get(bucket, "p/s1/a.dcm")
    assert await store.ping()


async def test_overwrite_replaces_whole(store: ObjectStore, bucket: str) -> None:
    await store.ensure_buckets([bucket])
    await store.put(bucket, "k", b"first version, longer")
    await store.put(bucket, "k", b"second")
    assert await store.get(bucket, "k") == b"second"


async def test_encrypted_bucket_holds_no_plaintext(store: ObjectStore, bucket: str) -> None:
    encrypted = EncryptedObjectStore(store, EnvelopeCipher(os.urandom(32)), frozenset({bucket}))
    await encrypted.ensure_buckets([bucket])
    secret = b"DICM Doe^Jane MRN0001 " * 50
    await encrypted.put(bucket, "p/x.dcm", secret)
    at_rest = await store.get(bucket, "p/x.dcm")
    assert b"Doe^Jane" not in at_rest
    assert await encrypted.get(bucket, "p/x.dcm") == secret


async def test_encrypted_bucket_without_key_refuses_to_write(
    store: ObjectStore, bucket: str
) -> None:
    encrypted = EncryptedObjectStore(store, None, frozenset({bucket}))
    with pytest.raises(RuntimeError, match="ENCRYPTION_KEY"):
        await encrypted.put(bucket, "p/x.dcm", b"x")


UNSAFE_KEYS = [
    "a/2.25.1/../../b/2.25.2/2.25.3/2.25.4.dcm",  # one project's key reaching into another's
    "../../etc/passwd",
    "/etc/passwd",
    "a/./b.dcm",
    "a//b.dcm",
    "a/b\x00.dcm",
    "a/b\n.dcm",
    "a\\..\\b.dcm",
    "",
]


@pytest.mark.parametrize("key", UNSAFE_KEYS)
async def test_every_store_refuses_keys_that_could_leave_their_place(
    store: ObjectStore, bucket: str, key: str
) -> None:
    await store.ensure_buckets([bucket])
    await store.put(bucket, "b/2.25.2/2.25.3/2.25.4.dcm", b"project b's pixels")
    for attempt in (
        store.put(bucket, key, b"overwritten"),
        store.get(bucket, key),
        store.exists(bucket, key),
        store.delete(bucket, key),
    ):
        with pytest.raises(InvalidKey, match="refused"):
            await attempt
    assert await store.get(bucket, "b/2.25.2/2.25.3/2.25.4.dcm") == b"project b's pixels"
    assert await store.list(bucket) == ["b/2.25.2/2.25.3/2.25.4.dcm"]
    if key:
        with pytest.raises(InvalidKey):
            await store.list(bucket, key)


async def test_fs_keys_cannot_leave_their_bucket_through_a_link(tmp_path: Path) -> None:
    store = FileObjectStore(tmp_path)
    await store.ensure_buckets(["b"])
    (tmp_path / "outside").mkdir()
    (tmp_path / "b" / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(InvalidKey, match="leaves its bucket"):
        await store.put("b", "link/x.dcm", b"x")
    assert not (tmp_path / "outside" / "x.dcm").exists()

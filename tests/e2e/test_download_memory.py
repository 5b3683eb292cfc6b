"""A project's zip streams: api's memory stays flat however large the download. A project of
768 MiB (48 instances of 16 MiB, put straight into the archive bucket and announced as the
archive does) is downloaded through the gateway while api's peak resident set is watched:
it may grow by a fraction of that, never by the zip."""

import asyncio
import hashlib
import os
import time
import zipfile
from pathlib import Path

import httpx
from giftcloud_core.bus import create_bus
from giftcloud_core.events import ArchivedInstance, InstancesArchived
from giftcloud_core.storage import archive_key, create_store
from support.deployment import Deployment

MiB = 1024 * 1024
PROJECT = "big-zip"
SIZE = 16 * MiB
COUNT = 48
STUDY = "2.25.7001"
SERIES = "2.25.7002"


async def _archive(deployment: Deployment, blob: bytes) -> None:
    settings = deployment.stack.settings()
    store = create_store(settings.storage)
    bucket = settings.storage.buckets.archive
    instances = []
    for n in range(COUNT):
        sop = f"{SERIES}.{n}"
        key = archive_key(PROJECT, STUDY, SERIES, sop)
        await store.put(bucket, key, blob)
        instances.append(
            ArchivedInstance(
                object_key=key,
                sha256=hashlib.sha256(blob).hexdigest(),
                size=len(blob),
                subject="SUBJ-LARGE",
                study_uid=STUDY,
                series_uid=SERIES,
                sop_uid=sop,
                sop_class_uid="1.2.840.10008.5.1.4.1.1.4",
                modality="MR",
            )
        )
    bus = create_bus(settings.bus, settings.db)
    await bus.start()
    try:
        await bus.publish(
            InstancesArchived(project=PROJECT, correlation_id="big", instances=tuple(instances))
        )
    finally:
        await bus.close()


def test_a_project_larger_than_memory_streams_in_constant_memory(
    deployment: Deployment, tmp_path: Path
) -> None:
    deployment.create_project(PROJECT)
    blob = os.urandom(SIZE)
    asyncio.run(_archive(deployment, blob))
    admin = deployment.token()
    url = f"{deployment.url}/api/projects/{PROJECT}/download"
    for _ in range(120):
        head = httpx.head(url, headers=admin, timeout=60)
        if head.status_code == 200 and int(head.headers["content-length"]) > COUNT * SIZE:
            break
        time.sleep(0.5)
    length = int(head.headers["content-length"])
    assert length > COUNT * SIZE, head.headers

    deployment.reset_peak_memory("api")
    before = deployment.memory("api")
    saved = tmp_path / "project.zip"
    received = 0
    with httpx.stream("GET", url, headers=admin, timeout=300) as answer, saved.open("wb") as out:
        assert answer.status_code == 200
        assert int(answer.headers["content-length"]) == length  # known before the first byte
        assert answer.headers["accept-ranges"] == "none"  # the zip is written from the start
        for chunk in answer.iter_bytes(1024 * 1024):
            out.write(chunk)
            received += len(chunk)
    after = deployment.memory("api")
    grew = after["VmHWM"] - before["VmRSS"]
    print(
        f"api: {received / MiB:.0f} MiB sent, resident {before['VmRSS'] / MiB:.0f} MiB before,"
        f" peak {after['VmHWM'] / MiB:.0f} MiB during (+{grew / MiB:.0f} MiB)"
    )
    assert received == length
    assert grew < 160 * MiB, f"api grew by {grew / MiB:.0f} MiB sending {length / MiB:.0f} MiB"

    with zipfile.ZipFile(saved) as archive:
        names = archive.namelist()
        assert names == [
            f"SUBJ-LARGE/{STUDY}/{SERIES}/{SERIES}.{n}.dcm" for n in sorted(range(COUNT), key=str)
        ]
        assert all(i.compress_type == zipfile.ZIP_STORED for i in archive.infolist())
        assert archive.testzip() is None  # every entry whole (its CRC)
        with archive.open(names[0]) as first:
            assert hashlib.sha256(first.read()).digest() == hashlib.sha256(blob).digest()

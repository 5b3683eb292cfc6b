"""bench/download: a study of about 1 GB downloaded as one zip through the gateway, against
reading the same objects straight from the object store (the same client library the api
uses) in the same run; and the peak memory of the api process while it serves the zip.
Prints both rates, the ratio (target >= 0.8) and the api's peak RSS (target < 200 MB).

    uv run python bench/download.py [--megabytes 1024] [--instance-kb 512]

Run from the repository after scripts/test has set the machine up (PostgreSQL, RabbitMQ,
nginx). The study is written straight into the archive and the catalogue (not ingested).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from catalogue_rows import INSTANCE_COLUMNS  # noqa: E402
from giftcloud_core.storage import archive_key, create_store  # noqa: E402
from support.deployment import deployed  # noqa: E402
from support.infra import Seaweed  # noqa: E402

PROJECT, STUDY, SERIES = "download", "2.25.4000", "2.25.4001"


def _rss_peak_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def fill(settings, database: str, count: int, size: int) -> list[str]:  # type: ignore[no-untyped-def]
    """``count`` objects of ``size`` bytes in the archive, catalogued; their keys."""
    store = create_store(settings.storage)
    bucket = settings.storage.buckets.archive
    keys = []
    data = os.urandom(size)
    limit = asyncio.Semaphore(8)

    async def put(n: int) -> None:
        key = archive_key(PROJECT, STUDY, SERIES, f"{SERIES}.{n + 1}")
        async with limit:
            await store.put(bucket, key, data[: size - 8] + n.to_bytes(8, "big"))
        keys.append(key)

    await asyncio.gather(*(put(n) for n in range(count)))
    connection = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:5432/{database}")
    now = datetime.now(UTC)
    await connection.execute(
        "INSERT INTO api.subjects VALUES ($1, 'SUBJ-DL') ON CONFLICT DO NOTHING", PROJECT
    )
    await connection.execute(
        "INSERT INTO api.studies (project, study_uid, subject, study_date, description,"
        " series_count, instance_count) VALUES ($1, $2, 'SUBJ-DL', '20240101', '', 1, $3)",
        PROJECT,
        STUDY,
        count,
    )
    await connection.execute(
        "INSERT INTO api.series (project, series_uid, study_uid, modality, description,"
        " number, instance_count) VALUES ($1, $2, $3, 'CT', '', 1, $4)",
        PROJECT,
        SERIES,
        STUDY,
        count,
    )
    await connection.copy_records_to_table(
        "instances",
        schema_name="api",
        records=[
            (
                PROJECT,
                f"{SERIES}.{n + 1}",
                SERIES,
                STUDY,
                "SUBJ-DL",
                "1.2.840.10008.5.1.4.1.1.2",
                n + 1,
                archive_key(PROJECT, STUDY, SERIES, f"{SERIES}.{n + 1}"),
                "",
                "{}",
                size,
                "0" * 64,
                "1.2.840.10008.1.2.1",
                now,
            )
            for n in range(count)
        ],
        columns=INSTANCE_COLUMNS,
    )
    await connection.close()
    return sorted(keys)


async def read_straight(settings, keys: list[str]) -> int:  # type: ignore[no-untyped-def]
    """Every object, one after the other, as the api reads them: the bytes read."""
    store = create_store(settings.storage)
    total = 0
    for key in keys:
        total += len(await store.get(settings.storage.buckets.archive, key))
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=1024)
    parser.add_argument("--instance-kb", type=int, default=512)
    args = parser.parse_args()
    size = args.instance_kb * 1024
    count = args.megabytes * 1024 * 1024 // size
    with tempfile.TemporaryDirectory(prefix="gc-download-") as tmp:
        work = Path(tmp)
        seaweed = Seaweed(work / "seaweed").start()
        try:
            with deployed(seaweed, work, GIFTCLOUD_LOG_LEVEL="WARNING") as giftcloud:
                giftcloud.create_project(PROJECT)
                settings = giftcloud.stack.settings()
                keys = asyncio.run(fill(settings, giftcloud.stack.database, count, size))
                print(
                    f"study: {count} instances of {args.instance_kb} kB, {count * size / 1e6:.0f} MB"
                )
                pid = giftcloud.services["api"].process.pid  # type: ignore[union-attr]
                before = _rss_peak_mb(pid)

                started = time.perf_counter()
                straight = asyncio.run(read_straight(settings, keys))
                s3 = time.perf_counter() - started

                headers = giftcloud.token()
                started = time.perf_counter()
                received = 0
                with httpx.stream(
                    "GET",
                    f"{giftcloud.url}/api/projects/{PROJECT}/download",
                    params={"study": STUDY},
                    headers=headers,
                    timeout=600,
                ) as response:
                    response.raise_for_status()
                    announced = int(response.headers["content-length"])
                    for chunk in response.iter_bytes(1 << 20):
                        received += len(chunk)
                zipped = time.perf_counter() - started
                after = _rss_peak_mb(pid)
        finally:
            seaweed.stop()
    assert received == announced, (received, announced)
    print(f"straight from S3: {straight / s3 / 1e6:7.1f} MB/s ({s3:.1f} s)")
    print(
        f"zip via gateway:  {received / zipped / 1e6:7.1f} MB/s ({zipped:.1f} s, {received / 1e6:.0f} MB, Content-Length exact)"
    )
    ratio = (received / zipped) / (straight / s3)
    print(f"ratio zip/S3: {ratio:.2f} (target >= 0.8: {'met' if ratio >= 0.8 else 'MISSED'})")
    print(
        f"api peak RSS: {before:.0f} MB before, {after:.0f} MB after serving the zip (target < 200 MB: {'met' if after < 200 else 'MISSED'})"
    )


if __name__ == "__main__":
    main()

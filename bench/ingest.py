"""bench/ingest: STOW-RS ingest rate of giftcloud -- five processes on the real servers, and
`giftcloud up` -- against Orthanc with its DICOMweb plugin in two configurations, in the
same run: storing only (SQLite index), and storing then anonymising each study
(`/studies/{id}/anonymize`, PostgreSQL index from orthanc-postgresql: the comparable work).
Each until every instance is visible to QIDO-RS (de-identified and archived, for
giftcloud; anonymised, for the second Orthanc). Prints the rates and, last, the ratios
against the targets (five processes >= 1.5x Orthanc store+anonymise and >= 0.6x Orthanc
store only; `giftcloud up` >= 1.0x Orthanc store only).

    uv run python bench/ingest.py [--instances N] [--batch 20]

Run from the repository after scripts/test has set the machine up (PostgreSQL, RabbitMQ,
nginx, Orthanc installed and running where needed).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from cpu_meter import CpuMeter  # noqa: E402
from giftcloud.client import multipart_related  # noqa: E402
from support.deployment import deployed  # noqa: E402
from support.dicom_files import distinct_instances  # noqa: E402
from support.infra import Orthanc, Seaweed, create_database, drop_database, wait_for  # noqa: E402
from support.up import Up  # noqa: E402


def send_and_wait(
    files: list[bytes], batch: int, stow_url: str, count: Callable[[], int], headers: dict[str, str]
) -> float:
    meter = CpuMeter()
    meter.start()
    started = time.perf_counter()
    with httpx.Client(timeout=300) as http:
        for start in range(0, len(files), batch):
            body, content_type = multipart_related(files[start : start + batch])
            response = http.post(
                stow_url, content=body, headers={**headers, "Content-Type": content_type}
            )
            if response.status_code >= 400:
                raise RuntimeError(f"{response.status_code}: {response.text[:2000]}")
    accepted = time.perf_counter() - started
    print(f"  all {len(files)} accepted (STOW-RS answered) after {accepted:.1f} s")
    wait_for(
        lambda: count() >= len(files), timeout=1800, interval=0.25, what="all instances in QIDO-RS"
    )
    elapsed = time.perf_counter() - started
    meter.stop()
    print("  CPU time by process:")
    print("\n".join(meter.report(len(files), elapsed)))
    return elapsed


def run_orthanc(files: list[bytes], batch: int, work: Path) -> float:
    orthanc = Orthanc(work).start()
    try:

        def count() -> int:
            return int(httpx.get(f"{orthanc.url}/statistics").json()["CountInstances"])

        return send_and_wait(files, batch, f"{orthanc.dicomweb}/studies", count, {})
    finally:
        orthanc.stop()


def run_orthanc_anonymising(files: list[bytes], batch: int, work: Path) -> float:
    """Store, then anonymise every study (two at a time), with a PostgreSQL index."""
    database = create_database()
    orthanc = Orthanc(
        work,
        config={
            "Plugins": [
                "/usr/share/orthanc/plugins/libOrthancDicomWeb.so",
                "/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so",
            ],
            "PostgreSQL": {
                "EnableIndex": True,
                "EnableStorage": False,
                "Host": "127.0.0.1",
                "Port": 5432,
                "Database": database,
                "Username": "postgres",
                "Password": "",
            },
        },
    ).start()
    try:
        anonymised: list[str] = []

        def count() -> int:
            if not anonymised:  # first everything stored, then each study anonymised
                studies = httpx.get(f"{orthanc.url}/studies", timeout=60).json()
                if int(httpx.get(f"{orthanc.url}/statistics").json()["CountInstances"]) < len(
                    files
                ):
                    return 0
                with ThreadPoolExecutor(2) as pool:
                    anonymised.extend(
                        pool.map(
                            lambda study: httpx.post(
                                f"{orthanc.url}/studies/{study}/anonymize", json={}, timeout=600
                            ).json()["ID"],
                            studies,
                        )
                    )
            return int(httpx.get(f"{orthanc.url}/statistics").json()["CountInstances"]) - len(files)

        return send_and_wait(files, batch, f"{orthanc.dicomweb}/studies", count, {})
    finally:
        orthanc.stop()
        drop_database(database)


def run_up(files: list[bytes], batch: int, work: Path) -> float:
    up = Up(work / "data", work / "up.log", "bench up password")
    try:
        up.start()
        headers = up.token()
        created = httpx.post(f"{up.url}/auth/projects", json={"name": "bench"}, headers=headers)
        created.raise_for_status()
        wait_for(
            lambda: (
                httpx.get(f"{up.url}/dicomweb/bench/studies", headers=headers).status_code == 200
            ),
            what="the project known to giftcloud up",
        )
        return send_and_wait(
            files,
            batch,
            f"{up.url}/dicomweb/bench/studies",
            lambda: up.instances("bench", headers),
            headers,
        )
    finally:
        up.stop()


def s3_put_cost(seaweed: Seaweed, size: int, count: int = 300) -> tuple[float, float]:
    """CPU ms of one PUT of an instance-sized object: (in the S3 server, in the client)."""
    client = seaweed.client()
    client.make_bucket("bench-put-cost")
    data = os.urandom(size)
    meter = CpuMeter()
    meter.start()
    for index in range(count):
        client.put_object("bench-put-cost", f"{index}.dcm", io.BytesIO(data), size)
    meter.stop()
    server = meter.seconds.get("s3 (seaweedfs)", 0.0) * 1000 / count
    return server, meter.seconds.get("bench client", 0.0) * 1000 / count


def run_giftcloud(files: list[bytes], batch: int, work: Path) -> float:
    seaweed = Seaweed(work / "seaweed").start()
    try:
        server, client = s3_put_cost(seaweed, sum(map(len, files)) // len(files))
        print(
            f"  one S3 PUT of an instance costs {server:.2f} ms CPU in SeaweedFS and "
            f"{client:.2f} ms in the minio client; the archive writes one per instance"
        )
        with deployed(seaweed, work, GIFTCLOUD_LOG_LEVEL="WARNING") as giftcloud:
            giftcloud.create_project("bench")
            headers = giftcloud.token()
            return send_and_wait(
                files,
                batch,
                f"{giftcloud.url}/dicomweb/bench/studies",
                lambda: giftcloud.instance_count("bench", headers),
                headers,
            )
    finally:
        seaweed.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=20)
    args = parser.parse_args()
    files = distinct_instances(args.instances, tag="8", rows=64)
    size = sum(map(len, files)) / 1e6
    print(f"corpus: {len(files)} instances, {size:.1f} MB, STOW-RS batches of {args.batch}")
    with tempfile.TemporaryDirectory(prefix="gc-bench-") as tmp:
        work = Path(tmp)
        for name in ("orthanc", "orthanc-anonymise", "giftcloud", "up"):
            (work / name).mkdir()
        print("orthanc, storing:")
        orthanc = run_orthanc(files, args.batch, work / "orthanc")
        print("orthanc, storing then anonymising each study (PostgreSQL index):")
        anonymising = run_orthanc_anonymising(files, args.batch, work / "orthanc-anonymise")
        print("giftcloud, five processes:")
        giftcloud = run_giftcloud(files, args.batch, work / "giftcloud")
        print("giftcloud up:")
        up = run_up(files, args.batch, work / "up")
    n = len(files)
    print(f"orthanc, store:            {n / orthanc:8.1f} instances/s ({orthanc:.1f} s)")
    print(f"orthanc, store+anonymise:  {n / anonymising:8.1f} instances/s ({anonymising:.1f} s)")
    print(
        f"giftcloud, five processes: {n / giftcloud:8.1f} instances/s ({giftcloud:.1f} s, de-identified and archived)"
    )
    print(
        f"giftcloud up:              {n / up:8.1f} instances/s ({up:.1f} s, de-identified and archived)"
    )
    budget = orthanc * (os.cpu_count() or 1) * 1000 / n
    print(
        f"parity budget: {budget:.2f} ms CPU per instance, every process together, "
        "on all cores (see the CPU times above)"
    )
    for name, ours, theirs, target in (
        ("five processes / orthanc store+anonymise", giftcloud, anonymising, 1.5),
        ("five processes / orthanc store", giftcloud, orthanc, 0.6),
        ("giftcloud up / orthanc store", up, orthanc, 1.0),
    ):
        ratio = theirs / ours
        print(
            f"ratio {name}: {ratio:.2f} (target {target}: {'met' if ratio >= target else 'MISSED'})"
        )


if __name__ == "__main__":
    main()

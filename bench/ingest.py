"""bench/ingest: STOW-RS ingest rate of giftcloud (five processes on the real servers)
against Orthanc (with its DICOMweb plugin) in the same run, until every instance is
visible to QIDO-RS on each. Prints both rates and, last, the ratio giftcloud/Orthanc.

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
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from cpu_meter import CpuMeter  # noqa: E402
from giftcloud.client import multipart_related  # noqa: E402
from support.deployment import deployed  # noqa: E402
from support.dicom_files import distinct_instances  # noqa: E402
from support.infra import Orthanc, Seaweed, wait_for  # noqa: E402


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


def s3_put_cost(seaweed: Seaweed, size: int, count: int = 300) -> tuple[float, float]:
    """CPU ms of one PUT of an instance-sized object: (in the S3 server, in the client)."""
    from minio import Minio

    client = Minio(seaweed.endpoint, access_key="bench", secret_key="bench", secure=False)
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
        (work / "orthanc").mkdir()
        (work / "giftcloud").mkdir()
        orthanc = run_orthanc(files, args.batch, work / "orthanc")
        giftcloud = run_giftcloud(files, args.batch, work / "giftcloud")
    print(f"orthanc:   {len(files) / orthanc:8.1f} instances/s ({orthanc:.1f} s)")
    print(
        f"giftcloud: {len(files) / giftcloud:8.1f} instances/s ({giftcloud:.1f} s, de-identified and archived)"
    )
    budget = orthanc * (os.cpu_count() or 1) * 1000 / len(files)
    print(
        f"parity budget: {budget:.2f} ms CPU per instance, every process together, "
        "on all cores (see the CPU times above)"
    )
    print(f"ratio giftcloud/orthanc: {orthanc / giftcloud:.2f}")


if __name__ == "__main__":
    main()

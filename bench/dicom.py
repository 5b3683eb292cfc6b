"""bench/dicom: C-STORE rate of giftcloud's DICOM node (five processes on the real servers)
against Orthanc's C-STORE SCP, in the same run, over 1, 4 and 8 concurrent associations
(dcmtk's storescu, one process per association), each until every instance is visible to
QIDO-RS (de-identified and archived, for giftcloud). Prints instances/s, the time per
C-STORE answer at one association (a Nagle stall would be ~40 ms), and the ratios
(target: giftcloud >= 1.0x Orthanc at 8 associations), and with an association per
instance (a quarter of the instances, one storescu per file, one after another). Twice:
with storescu as Debian builds it (Nagle's algorithm on, as in many modalities) and with
TCP_NODELAY=1 (dcmtk's switch).

    uv run python bench/dicom.py [--instances 400]

Run from the repository after scripts/test has set the machine up (PostgreSQL, RabbitMQ,
nginx, Orthanc and dcmtk installed).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from cpu_meter import CpuMeter  # noqa: E402
from support.deployment import deployed  # noqa: E402
from support.dicom_files import distinct_instances  # noqa: E402
from support.infra import Orthanc, Seaweed, dcmtk, free_port, wait_for  # noqa: E402

CONCURRENCY = (1, 4, 8)
#: the row for senders that open an association per instance (as some PACS forward):
#: a quarter of the instances, one storescu after another, one file each
PER_INSTANCE = 0
#: dcmtk's, not pynetdicom's program of the same name that `uv run` puts first on PATH
STORESCU = dcmtk("storescu") or "storescu"


def corpus(folder: Path, count: int, tag: str) -> list[Path]:
    folder.mkdir(parents=True)
    paths = []
    for index, data in enumerate(distinct_instances(count, tag=tag, rows=64)):
        path = folder / f"{index:05d}.dcm"
        path.write_bytes(data)
        paths.append(path)
    return paths


#: (name, storescu's environment): Nagle on as Debian builds it, then off
CLIENTS = (("nagle", {}), ("nodelay", {"TCP_NODELAY": "1"}))


def send(
    files: list[Path],
    associations: int,
    port: int,
    called: str,
    count: Callable[[], int],
    env: dict[str, str],
) -> tuple[float, float]:
    """Seconds until storescu's answers were all in, and until all were visible: one
    storescu per association at once, or (PER_INSTANCE) one per file, one after another."""

    def storescu(chunk: list[Path]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [STORESCU, "-aec", called, "127.0.0.1", str(port), *map(str, chunk)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )

    def finish(sender: subprocess.Popen[bytes]) -> None:
        output = sender.communicate(timeout=1800)[0]
        if sender.returncode != 0:
            raise RuntimeError(f"storescu failed: {output.decode()[-2000:]}")

    started = time.perf_counter()
    if associations == PER_INSTANCE:
        for path in files:
            finish(storescu([path]))
    else:
        for sender in [storescu(files[n::associations]) for n in range(associations)]:
            finish(sender)
    answered = time.perf_counter() - started
    wait_for(lambda: count() >= len(files), timeout=1800, interval=0.25, what="all in QIDO-RS")
    return answered, time.perf_counter() - started


Corpora = dict[tuple[str, int], list[Path]]
Results = dict[tuple[str, int], tuple[float, float]]


def run_orthanc(corpora: Corpora, work: Path) -> Results:
    orthanc = Orthanc(work / "orthanc").start()
    results = {}
    try:
        sent = 0
        for (client, associations), files in corpora.items():
            sent += len(files)
            goal = sent

            def count(goal: int = goal, before: int = goal - len(files)) -> int:
                stats = httpx.get(f"{orthanc.url}/statistics", timeout=30).json()
                return int(stats["CountInstances"]) - before

            results[client, associations] = send(
                files, associations, orthanc.dicom_port, "PEER", count, dict(CLIENTS)[client]
            )
    finally:
        orthanc.stop()
    return results


def run_giftcloud(corpora: Corpora, work: Path) -> Results:
    seaweed = Seaweed(work / "seaweed").start()
    port = free_port()
    results = {}
    try:
        with deployed(
            seaweed,
            work,
            GIFTCLOUD_LOG_LEVEL="WARNING",
            GIFTCLOUD_INGEST__DICOM_PORT=str(port),
            GIFTCLOUD_INGEST__DICOM_HOST="127.0.0.1",
        ) as giftcloud:
            headers = giftcloud.token()
            for (client, associations), files in corpora.items():
                project = f"bench-{client}{associations}"
                giftcloud.create_project(project)
                route = httpx.put(
                    f"{giftcloud.url}/ingest/{project}/dicom",
                    json={"ae_title": f"B{client[:2].upper()}{associations}"},
                    headers=headers,
                )
                route.raise_for_status()
                meter = CpuMeter()
                meter.start()
                started = time.perf_counter()
                results[client, associations] = send(
                    files,
                    associations,
                    port,
                    f"B{client[:2].upper()}{associations}",
                    lambda project=project: giftcloud.instance_count(project, headers),
                    dict(CLIENTS)[client],
                )
                meter.stop()
                how = f"{associations}" if associations != PER_INSTANCE else "one per instance,"
                print(f"  giftcloud, {client}, {how} association(s): CPU by process")
                print("\n".join(meter.report(len(files), time.perf_counter() - started)))
    finally:
        seaweed.stop()
    return results


def size(instances: int, associations: int) -> int:
    return instances // 4 if associations == PER_INSTANCE else instances


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=400, help="per concurrency level")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gc-bench-dicom-") as tmp:
        work = Path(tmp)
        results = {}
        for peer in ("orthanc", "giftcloud"):
            corpora = {
                (client, n): corpus(
                    work / peer / f"{client}{n}", size(args.instances, n), tag=f"9{n}{len(peer)}{i}"
                )
                for i, (client, _) in enumerate(CLIENTS)
                for n in (*CONCURRENCY, PER_INSTANCE)
            }
            print(f"{peer}: {args.instances} instances of 64x64 per run ...", flush=True)
            run = run_orthanc if peer == "orthanc" else run_giftcloud
            results[peer] = run(corpora, work / peer)
        for client, _ in CLIENTS:
            print()
            print(f"storescu {client}: instances/s until visible (answered)")
            print("associations  orthanc/s       giftcloud/s     ratio")
            for n in (*CONCURRENCY, PER_INSTANCE):
                o_answered, o_visible = results["orthanc"][client, n]
                g_answered, g_visible = results["giftcloud"][client, n]
                sent = size(args.instances, n)
                rate_o, rate_g = sent / o_visible, sent / g_visible
                label = f"{n:12d}" if n != PER_INSTANCE else "per instance"
                print(
                    f"{label}  {rate_o:6.1f} ({sent / o_answered:5.1f})"
                    f"  {rate_g:6.1f} ({sent / g_answered:5.1f})  {rate_g / rate_o:5.2f}"
                )
            for peer in ("orthanc", "giftcloud"):
                answered = results[peer][client, 1][0]
                print(
                    f"  {peer}: {answered * 1000 / args.instances:.1f} ms per C-STORE answer at"
                    " one association"
                )
            ratio = (args.instances / results["giftcloud"][client, 8][1]) / (
                args.instances / results["orthanc"][client, 8][1]
            )
            print(f"  giftcloud / Orthanc at 8 associations: {ratio:.2f} (target 1.0)")


if __name__ == "__main__":
    main()

"""bench/qido: QIDO-RS and WADO-RS metadata latency at the api, through the gateway, over a
catalogue of 1,000,000 instances (1,000 subjects, 10,000 studies, 50,000 series), written
straight into the catalogue's tables (not ingested). Prints p50/p95/p99 of each query and
whether it meets its target (QIDO p95 < 20 ms, series metadata p95 < 100 ms).

    uv run python bench/qido.py [--subjects 1000] [--repeat 200]

Run from the repository after scripts/test has set the machine up (PostgreSQL, RabbitMQ,
nginx). Orthanc is not loaded at this scale: storing a million instances into it takes
hours on this machine, so there is no peer figure here (bench/ingest compares with it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from catalogue_rows import INSTANCE_COLUMNS  # noqa: E402
from support.deployment import deployed  # noqa: E402
from support.infra import Seaweed  # noqa: E402

PROJECT = "qido"
MODALITIES = (
    ("CT", "CT", "CT", "SR", "PR"),
    ("MR", "MR", "MR", "MR", "SR"),
    ("PT", "CT", "CT", "PT", "SR"),
)
SERIES_PER_STUDY, STUDIES_PER_SUBJECT, INSTANCES_PER_SERIES, BIG_SERIES = 5, 10, 20, 500


def _e(vr: str, *values: Any) -> dict[str, Any]:
    return {"vr": vr, "Value": list(values)} if values else {"vr": vr}


def _study_attributes(subject: str, uid: str, day: str, n: int) -> dict[str, Any]:
    return {
        "00080005": _e("CS", "ISO_IR 100"),
        "00080020": _e("DA", day),
        "00080030": _e("TM", f"{8 + n % 10:02d}{n % 60:02d}00"),
        "00080050": _e("SH", f"ACC{n:07d}"),
        "00080090": _e("PN"),
        "00081030": _e("LO", ("CT CHEST", "MR BRAIN", "PET-CT WHOLE BODY")[n % 3]),
        "00100010": _e("PN", {"Alphabetic": subject.replace("-", "^")}),
        "00100020": _e("LO", subject),
        "00100030": _e("DA"),
        "00100040": _e("CS", "FM"[n % 2]),
        "0020000D": _e("UI", uid),
        "00200010": _e("SH", str(n % 1000)),
    }


def _instance_template() -> str:
    """An instance's DICOM JSON as the archive makes it (about 2 kB), with placeholders."""
    attributes = {
        "00020010": _e("UI", "1.2.840.10008.1.2.1"),
        "00080008": _e("CS", "ORIGINAL", "PRIMARY", "AXIAL"),
        "00080016": _e("UI", "1.2.840.10008.5.1.4.1.1.2"),
        "00080018": _e("UI", "@SOP@"),
        "00080020": _e("DA", "@DAY@"),
        "00080060": _e("CS", "@MOD@"),
        "00080070": _e("LO", "ACME"),
        "00081090": _e("LO", "Scanner 3000"),
        "00100010": _e("PN", {"Alphabetic": "@NAME@"}),
        "00100020": _e("LO", "@SUBJECT@"),
        "00120062": _e("CS", "YES"),
        "00120063": _e("LO", "giftcloud basic profile"),
        "00180050": _e("DS", 1.25),
        "00180060": _e("DS", 120),
        "00181150": _e("IS", 500),
        "00181151": _e("IS", 200),
        "0020000D": _e("UI", "@STUDY@"),
        "0020000E": _e("UI", "@SERIES@"),
        "00200011": _e("IS", 1),
        "00200013": _e("IS", 0),
        "00200032": _e("DS", -250.0, -250.0, 0.0),
        "00200037": _e("DS", 1, 0, 0, 0, 1, 0),
        "00200052": _e("UI", "2.25.77"),
        "00201041": _e("DS", 0.0),
        "00280002": _e("US", 1),
        "00280004": _e("CS", "MONOCHROME2"),
        "00280010": _e("US", 512),
        "00280011": _e("US", 512),
        "00280030": _e("DS", 0.7, 0.7),
        "00280100": _e("US", 16),
        "00280101": _e("US", 12),
        "00280102": _e("US", 11),
        "00280103": _e("US", 0),
        "00281050": _e("DS", 40),
        "00281051": _e("DS", 400),
        "00281052": _e("DS", -1024),
        "00281053": _e("DS", 1),
        "7FE00010": {"vr": "OW", "BulkDataURI": "@BULK@"},
    }
    return json.dumps(attributes)


async def fill(url: str, subjects: int) -> int:
    """Write the catalogue; the number of instances."""
    connection = await asyncpg.connect(url)
    template = _instance_template()
    first_day = date(2015, 1, 1)
    archived = datetime.now(UTC)
    subject_rows, study_rows, series_rows, instance_rows = [], [], [], []
    n_study = n_series = 0
    for s in range(subjects):
        subject = f"SUBJ-{s:05d}"
        subject_rows.append((PROJECT, subject))
        for _ in range(STUDIES_PER_SUBJECT):
            study = f"2.25.{1_000_000 + n_study}"
            day = (first_day + timedelta(days=(n_study * 37) % 3650)).strftime("%Y%m%d")
            mods = MODALITIES[n_study % 3]
            sizes = [
                BIG_SERIES if n_study == 0 and j == 0 else INSTANCES_PER_SERIES
                for j in range(SERIES_PER_STUDY)
            ]
            study_rows.append(
                (
                    PROJECT,
                    study,
                    subject,
                    day,
                    "",
                    json.dumps(_study_attributes(subject, study, day, n_study)),
                    sorted(set(mods)),
                    SERIES_PER_STUDY,
                    sum(sizes),
                    subject.replace("-", "^").upper(),
                )
            )
            for j, (modality, size) in enumerate(zip(mods, sizes, strict=True)):
                series = f"2.25.{2_000_000 + n_series}"
                series_rows.append(
                    (
                        PROJECT,
                        series,
                        study,
                        modality,
                        f"series {j + 1}",
                        j + 1,
                        json.dumps(
                            {
                                "00080060": _e("CS", modality),
                                "0020000E": _e("UI", series),
                                "00200011": _e("IS", j + 1),
                                "0008103E": _e("LO", f"series {j + 1}"),
                            }
                        ),
                        size,
                    )
                )
                for k in range(size):
                    sop = f"{series}.{k + 1}"
                    bulk = (
                        f"/dicomweb/{PROJECT}/studies/{study}/series/{series}/instances/{sop}/bulk"
                    )
                    attributes = (
                        template.replace("@SOP@", sop)
                        .replace("@DAY@", day)
                        .replace("@MOD@", modality)
                        .replace("@NAME@", subject.replace("-", "^"))
                        .replace("@SUBJECT@", subject)
                        .replace("@STUDY@", study)
                        .replace("@SERIES@", series)
                        .replace("@BULK@", bulk)
                        .replace(
                            '"00200013": {"vr": "IS", "Value": [0]}',
                            f'"00200013": {{"vr": "IS", "Value": [{k + 1}]}}',
                        )
                    )
                    instance_rows.append(
                        (
                            PROJECT,
                            sop,
                            series,
                            study,
                            subject,
                            "1.2.840.10008.5.1.4.1.1.2",
                            k + 1,
                            f"{PROJECT}/{study}/{series}/{sop}.dcm",
                            "",
                            attributes,
                            526_000,
                            "0" * 64,
                            "1.2.840.10008.1.2.1",
                            archived,
                        )
                    )
                n_series += 1
            n_study += 1
        if len(instance_rows) >= 100_000 or s == subjects - 1:
            await connection.copy_records_to_table(
                "instances",
                schema_name="api",
                records=instance_rows,
                columns=INSTANCE_COLUMNS,
            )
            instance_rows.clear()
    await connection.copy_records_to_table(
        "subjects", schema_name="api", records=subject_rows, columns=["project", "label"]
    )
    await connection.copy_records_to_table(
        "studies",
        schema_name="api",
        records=study_rows,
        columns=[
            "project",
            "study_uid",
            "subject",
            "study_date",
            "description",
            "attributes",
            "modalities",
            "series_count",
            "instance_count",
            "patient_name",
        ],
    )
    await connection.copy_records_to_table(
        "series",
        schema_name="api",
        records=series_rows,
        columns=[
            "project",
            "series_uid",
            "study_uid",
            "modality",
            "description",
            "number",
            "attributes",
            "instance_count",
        ],
    )
    await connection.execute("VACUUM ANALYZE api.subjects, api.studies, api.series, api.instances")
    total = await connection.fetchval(
        "SELECT count(*) FROM api.instances WHERE project = $1", PROJECT
    )
    await connection.close()
    return int(total)


def measure(http: httpx.Client, path: str, repeat: int) -> list[float]:
    for _ in range(5):  # warm: connections, plans, caches
        http.get(path).raise_for_status()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = http.get(path)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gc-qido-") as tmp:
        work = Path(tmp)
        seaweed = Seaweed(work / "seaweed").start()
        try:
            with deployed(seaweed, work, GIFTCLOUD_LOG_LEVEL="WARNING") as giftcloud:
                giftcloud.create_project(PROJECT)
                database = giftcloud.stack.database
                started = time.perf_counter()
                count = asyncio.run(
                    fill(f"postgresql://postgres@127.0.0.1:5432/{database}", args.subjects)
                )
                print(
                    f"catalogue: {count} instances, {args.subjects * STUDIES_PER_SUBJECT} studies,"
                    f" {args.subjects * STUDIES_PER_SUBJECT * SERIES_PER_STUDY} series,"
                    f" written in {time.perf_counter() - started:.0f} s"
                )
                big_study, big_series = "2.25.1000000", "2.25.2000000"
                base = f"/dicomweb/{PROJECT}"
                subject = f"SUBJ-{args.subjects // 2:05d}"
                queries = [
                    ("/studies (no filter)", f"{base}/studies?limit=100", 20),
                    ("/studies a subject", f"{base}/studies?PatientID={subject}", 20),
                    (
                        "/studies a date range",
                        f"{base}/studies?StudyDate=20200101-20200331&limit=100",
                        20,
                    ),
                    ("/studies a modality", f"{base}/studies?ModalitiesInStudy=PT&limit=100", 20),
                    (
                        "/studies a wildcard name",
                        f"{base}/studies?PatientName=SUBJ^{args.subjects // 2:05d}*",
                        20,
                    ),
                    ("/studies offset 5,000", f"{base}/studies?limit=100&offset=5000", 20),
                    ("/studies/{s}/series", f"{base}/studies/{big_study}/series", 20),
                    (
                        "/studies/{s}/series/{se}/instances",
                        f"{base}/studies/{big_study}/series/{big_series}/instances?limit=100",
                        20,
                    ),
                    (
                        "series metadata (500 instances)",
                        f"{base}/studies/{big_study}/series/{big_series}/metadata",
                        100,
                    ),
                ]
                with httpx.Client(
                    base_url=giftcloud.url, headers=giftcloud.token(), timeout=60
                ) as http:
                    print(f"{'query':40} {'p50':>7} {'p95':>7} {'p99':>7}  target (p95)")
                    for name, path, target in queries:
                        times = measure(http, path, args.repeat)
                        cuts = statistics.quantiles(times, n=100)
                        p50, p95, p99 = statistics.median(times), cuts[94], cuts[98]
                        verdict = "met" if p95 < target else "MISSED"
                        print(
                            f"{name:40} {p50:6.1f}ms {p95:6.1f}ms {p99:6.1f}ms  < {target} ms: {verdict}"
                        )
        finally:
            seaweed.stop()


if __name__ == "__main__":
    main()

"""De-identification speed, side by side on one corpus in one run.

    uv run python bench/deid.py [--seconds 4] [--rounds 3]

Runs giftcloud's engine (default profile, verification on), dicognito, KitwareMedical's
dicom-anonymizer and a plain pydicom read+write over the same in-memory corpus
(pydicom's bundled test files, the TCIA pseudo-PHI series when present and generated
instances with planted identifiers), in interleaved rounds, and prints files/s for each,
how many of the input's identifiers each left in its output, the ratios, and the
scaling of giftcloud from one worker process to two. The last line holds the ratios
the targets are stated in.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from giftcloud_deid import Deidentifier, ProjectKeys, Rejected  # noqa: E402
from support.dicom_files import distinct_instances  # noqa: E402

TCIA = ROOT.parent / "shared" / "data" / "tcia-pseudo-phi"
KEYS = ProjectKeys.derive(b"bench-secret-bench-secret-bench!", "bench")
IDENTIFYING = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientAddress",
    "AccessionNumber",
    "ReferringPhysicianName",
    "OtherPatientIDs",
    "InstitutionName",
)

Tool = Callable[[bytes], bytes]


def _write(ds: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


def plain(data: bytes) -> bytes:
    return _write(pydicom.dcmread(io.BytesIO(data)))


def giftcloud() -> Tool:
    engine = Deidentifier(KEYS)
    return lambda data: engine.deidentify(data).data


def dicognito() -> Tool:
    from dicognito.anonymizer import Anonymizer

    anonymizer = Anonymizer(seed="bench")

    def run(data: bytes) -> bytes:
        ds = pydicom.dcmread(io.BytesIO(data))
        anonymizer.anonymize(ds)
        return _write(ds)

    return run


def dicom_anonymizer() -> Tool:
    from dicomanonymizer.simpledicomanonymizer import anonymize_dataset

    def run(data: bytes) -> bytes:
        ds = pydicom.dcmread(io.BytesIO(data))
        anonymize_dataset(ds)
        return _write(ds)

    return run


def corpus() -> list[bytes]:
    files: list[bytes] = []
    folder = Path(str(get_testdata_file("CT_small.dcm", download=False))).parent
    files += [p.read_bytes() for p in sorted(folder.glob("*.dcm"))]
    if TCIA.is_dir():
        files += [p.read_bytes() for p in sorted(TCIA.glob("*.dcm"))]
    else:
        print(f"(TCIA series absent at {TCIA}: left out)")
    files += distinct_instances(40, "4242", rows=64)
    return files


def identifiers(data: bytes) -> list[bytes]:
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    # a device's maker is no patient identifier, even where it fills InstitutionName
    devices = {str(ds.get(k, "") or "") for k in ("Manufacturer", "ManufacturerModelName")}
    found = []
    for keyword in IDENTIFYING:
        value = str(ds.get(keyword, "") or "")
        if len(value) >= 4 and not any(value in device for device in devices):
            found.append(value.encode())
    return found


def cleaned_pixels(files: list[bytes]) -> set[int]:
    """Files on which a burned-in text rule fires: giftcloud decodes and masks their pixels,
    which no other tool does, so they are timed apart."""
    engine = Deidentifier(KEYS)
    fired = set()
    for index, data in enumerate(files):
        try:
            if engine.deidentify(data).pixels_cleaned:
                fired.add(index)
        except Rejected:
            continue
    return fired


def usable(files: list[bytes], tools: dict[str, Tool]) -> list[bytes]:
    """The files every tool processes (giftcloud may reject: it must then say why)."""
    kept = []
    for data in files:
        try:
            for name, tool in tools.items():
                if name == "giftcloud":
                    try:
                        tool(data)
                    except Rejected:
                        raise ValueError("rejected by giftcloud") from None
                else:
                    tool(data)
        except Exception:
            continue
        kept.append(data)
    return kept


def rate(tool: Tool, files: list[bytes], seconds: float) -> float:
    done = 0
    started = time.perf_counter()
    while True:
        for data in files:
            tool(data)
        done += len(files)
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return done / elapsed


def leaks(tool: Tool, files: list[bytes]) -> int:
    count = 0
    for data in files:
        out = tool(data)
        header = out[: out.rfind(b"\xe0\x7f\x10\x00")] if b"\xe0\x7f\x10\x00" in out else out
        count += sum(1 for value in identifiers(data) if value in header)
    return count


_worker_files: list[bytes] = []
_worker_tool: Tool | None = None


def _init(files: list[bytes]) -> None:
    global _worker_files, _worker_tool
    _worker_files, _worker_tool = files, giftcloud()


def _chunk(indexes: list[int]) -> int:
    assert _worker_tool is not None
    for i in indexes:
        _worker_tool(_worker_files[i])
    return len(indexes)


def workers_rate(files: list[bytes], workers: int, passes: int) -> float:
    jobs = [list(range(len(files)))] * (passes * workers)
    with ProcessPoolExecutor(workers, initializer=_init, initargs=(files,)) as pool:
        list(pool.map(_chunk, jobs[:workers]))  # warm up every worker
        started = time.perf_counter()
        done = sum(pool.map(_chunk, jobs))
        return done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=4.0, help="per tool per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    tools: dict[str, Tool] = {
        "giftcloud": giftcloud(),
        "dicognito": dicognito(),
        "dicom-anonymizer": dicom_anonymizer(),
        "pydicom read+write": plain,
    }
    everything = corpus()
    readable = usable(everything, tools)
    fired = cleaned_pixels(readable)
    files = [f for i, f in enumerate(readable) if i not in fired]
    size = sum(len(f) for f in files) / 1e6
    print(
        f"corpus: {len(files)} files ({size:.1f} MB) of {len(everything)}: those every tool "
        f"reads, less {len(fired)} on which a burned-in text rule fires (timed apart)"
    )
    if fired:
        masked = [readable[i] for i in sorted(fired)]
        pixel_rate = rate(tools["giftcloud"], masked, 1.0)
        print(f"giftcloud with burned-in text masked: {pixel_rate:.1f} files/s")
    rates: dict[str, list[float]] = {name: [] for name in tools}
    for _ in range(args.rounds):  # interleaved, so drift on a noisy machine hits all alike
        for name, tool in tools.items():
            rates[name].append(rate(tool, files, args.seconds))
    median = {name: statistics.median(values) for name, values in rates.items()}
    for name, tool in tools.items():
        print(f"{name:>20}: {median[name]:8.1f} files/s   identifiers left: {leaks(tool, files)}")
    one = workers_rate(files, 1, passes=max(2, int(median["giftcloud"] * 3 / len(files))))
    two = workers_rate(files, 2, passes=max(2, int(median["giftcloud"] * 3 / len(files))))
    cores = os.cpu_count()
    print(
        f"giftcloud in worker processes: 1 → {one:.1f} files/s, 2 → {two:.1f} files/s ({cores} cores)"
    )
    print(
        f"ratios: giftcloud/dicognito {median['giftcloud'] / median['dicognito']:.2f}  "
        f"giftcloud/dicom-anonymizer {median['giftcloud'] / median['dicom-anonymizer']:.2f}  "
        f"giftcloud/pydicom {median['giftcloud'] / median['pydicom read+write']:.2f}  "
        f"2 workers/1 {two / one:.2f}"
    )


if __name__ == "__main__":
    main()

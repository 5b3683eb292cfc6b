"""Jobs at a site, without servers: only the approved bytes run, the algorithms giftcloud
ships compute what they say, and an output leaves without the steward only when it is an
aggregate the site's disclosure control leaves unchanged."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
from giftcloud_api.federation.schemas import Task
from giftcloud_api.jobs.algorithms import digest, installed
from giftcloud_api.jobs.runner import release
from pydantic import ValidationError
from support.dicom_files import read, synthetic_instance, to_bytes


def _series(root: Path, values: list[int], per_series: int = 2) -> Path:
    inputs = root / "inputs"
    for n, value in enumerate(values):
        folder = inputs / f"series-{n:05d}"
        folder.mkdir(parents=True)
        for i in range(per_series):
            ds = read(synthetic_instance())
            ds.PixelData = value.to_bytes(2, "little") * (ds.Rows * ds.Columns)
            (folder / f"{i}.dcm").write_bytes(to_bytes(ds))
    return inputs


def _child(
    tmp_path: Path, name: str, approved: str, inputs: Path, **params: object
) -> tuple[int, str, Path]:
    (tmp_path / "p.json").write_text(json.dumps(params))
    (tmp_path / "images").mkdir(exist_ok=True)
    out = tmp_path / "out.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "giftcloud_api.jobs.child",
            name,
            approved,
            str(inputs),
            str(tmp_path / "p.json"),
            str(out),
            str(tmp_path / "images"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stderr, out


def test_the_shipped_algorithms_are_known_by_the_digest_of_their_source() -> None:
    found = installed()
    assert {"intensity-histogram", "series-sizes"} <= set(found)
    histogram = found["intensity-histogram"]
    assert digest(histogram.source()) == hashlib.sha256(histogram.path.read_bytes()).hexdigest()
    assert histogram.summary().startswith("Histogram of the series' mean")


def test_only_the_approved_code_runs(tmp_path: Path) -> None:
    inputs = _series(tmp_path, [100])
    code, said, out = _child(tmp_path, "intensity-histogram", "0" * 64, inputs)
    assert code == 1 and "is not the approved code" in said and not out.exists()
    code, said, _ = _child(tmp_path, "no-such-thing", "0" * 64, inputs)
    assert code == 1 and "no algorithm no-such-thing is installed" in said


def test_the_intensity_histogram_counts_series_by_their_mean(tmp_path: Path) -> None:
    inputs = _series(tmp_path, [100, 120, 700, 5000])  # 5000: past the top, in the last bin
    approved = digest(installed()["intensity-histogram"].source())
    code, said, out = _child(
        tmp_path, "intensity-histogram", approved, inputs, low=0, high=1000, bins=2
    )
    assert code == 0, said
    assert json.loads(out.read_text()) == {
        "kind": "aggregate",
        "cells": [{"key": ["0 to 500"], "count": 2}, {"key": ["500 to 1000"], "count": 2}],
        "total": 4,
    }


def test_the_threshold_segmentation_writes_a_seg_per_series_and_returns_nothing(
    tmp_path: Path,
) -> None:
    inputs = _series(tmp_path, [100, 700], per_series=1)
    approved = digest(installed()["threshold-segmentation"].source())
    code, said, out = _child(tmp_path, "threshold-segmentation", approved, inputs, threshold=500)
    assert code == 0, said
    assert json.loads(out.read_text()) == {}  # nothing for the hub
    segs = [pydicom.dcmread(p) for p in sorted((tmp_path / "images").iterdir())]
    assert [s.SOPClassUID for s in segs] == ["1.2.840.10008.5.1.4.1.1.66.4"] * 2
    sources = {
        pydicom.dcmread(next(folder.iterdir())).StudyInstanceUID: folder.name
        for folder in inputs.iterdir()
    }
    masks = {sources[s.StudyInstanceUID]: s.pixel_array for s in segs}
    # the series at 100 has nothing above 500, the one at 700 all of it
    assert not masks["series-00000"].any() and masks["series-00001"].all(), masks


def test_an_algorithm_s_failure_is_one_line(tmp_path: Path) -> None:
    inputs = _series(tmp_path, [1])
    approved = digest(installed()["intensity-histogram"].source())
    code, said, _ = _child(tmp_path, "intensity-histogram", approved, inputs, bins=0)
    assert code == 1 and said.strip() == "ValueError: parameters: low < high and 1 <= bins <= 64"


def _aggregate(*counts: int) -> dict[str, object]:
    cells = [{"key": [f"bin {i}"], "count": n} for i, n in enumerate(counts)]
    return {"kind": "aggregate", "cells": cells, "total": sum(counts)}


@pytest.mark.parametrize(
    ("result", "state", "reason"),
    [
        (_aggregate(12, 11), "done", "released: an aggregate, every count at least k = 10"),
        (
            _aggregate(32, 3),
            "awaiting_release",
            "held for the steward: a count below k = 10 (35 series)",
        ),
        (
            _aggregate(5),
            "awaiting_release",
            "held for the steward: a count below k = 10 (35 series)",
        ),
        (
            {**_aggregate(12, 11), "total": 30},
            "awaiting_release",
            "held for the steward: its cells do not add up",
        ),
        (
            {**_aggregate(12), "note": "x"},
            "awaiting_release",
            "held for the steward: not an aggregate of counts",
        ),
        (
            {"kind": "listing", "series": []},
            "awaiting_release",
            "held for the steward: not an aggregate of counts",
        ),
    ],
)
def test_an_output_leaves_unreviewed_only_as_an_aggregate_that_passes_k(
    result: dict[str, object], state: str, reason: str
) -> None:
    decided, why, released = release(result, 10, 35)
    assert (decided, why) == (state, reason)
    assert released == (result if state == "done" else {})


def test_a_task_carries_what_its_kind_needs() -> None:
    base = {"id": "j", "project": "p", "asked_by": "rosa", "asked_at": "2026-12-05T00:00:00Z"}
    Task.model_validate({**base, "kind": "job", "job": {"attempt": 1}})
    for bad in ({"kind": "count"}, {"kind": "job"}, {"kind": "count", "job": {}, "question": {}}):
        with pytest.raises(ValidationError):
            Task.model_validate({**base, **bad})

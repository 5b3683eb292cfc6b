"""The raw reader's DICOM JSON is pydicom's, exactly, wherever it answers: every file
pydicom ships, the files full of planted identifiers before and after the engine, the
TCIA slices and bench's instances; and it answers for the common ones."""

from __future__ import annotations

import warnings
from pathlib import Path

import pydicom
import pytest
from giftcloud_deid import Deidentifier, ProjectKeys
from giftcloud_dicom.metadata import _fast, describe_with_pydicom
from support.dicom_files import (
    bundled_files,
    distinct_instances,
    pydicom_file,
    synthetic_instance,
    to_bytes,
)
from support.planting import plant
from support.shared import SHARED

BULK = "http://x/dicomweb/p/studies/1/series/2/instances/3/bulk"


def corpus() -> list[tuple[str, bytes]]:
    files = [(Path(p).name, Path(p).read_bytes()) for p in bundled_files()]
    files += [(f"synthetic-{n}", f) for n, f in enumerate(distinct_instances(20, "91", rows=64))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        planted = pydicom.dcmread(pydicom_file("CT_small.dcm"))
        plant(planted)
    files += [("synthetic", synthetic_instance()), ("planted", to_bytes(planted))]
    tcia = sorted((SHARED / "data" / "tcia-pseudo-phi").glob("*.dcm"))
    files += [(p.name, p.read_bytes()) for p in tcia[:10]]
    engine = Deidentifier(ProjectKeys.derive(b"f" * 32, "p"), verify_output=False)
    outputs = []
    for name, data in files:
        try:
            outputs.append((f"{name} de-identified", engine.deidentify(data).data))
        except Exception:
            continue
    return files + outputs


CORPUS = corpus()


@pytest.mark.parametrize(("name", "data"), CORPUS, ids=[n for n, _ in CORPUS])
def test_the_fast_json_is_pydicoms(name: str, data: bytes) -> None:
    fast = _fast(data, BULK)
    if fast is None:
        return  # left to pydicom (counted below)
    try:
        slow = describe_with_pydicom(data, BULK, 10**9)
    except Exception:
        pytest.fail(f"{name}: pydicom cannot read what the fast path described")
    assert fast[0] == slow[0]
    assert fast[1] == slow[1]


def test_the_common_instances_take_the_fast_path() -> None:
    # what modalities and the engine send: bench's instances, the TCIA slices, and each
    # after de-identification
    common = [d for n, d in CORPUS if n.startswith(("synthetic", "1-"))]
    assert all(_fast(d, BULK) is not None for d in common)
    answered = sum(_fast(d, BULK) is not None for _, d in CORPUS)
    assert answered >= len(CORPUS) // 3, f"{answered} of {len(CORPUS)}"

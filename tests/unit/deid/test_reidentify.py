"""A result made at a hub on de-identified images maps back to the hospital's originals:
the patient from the vault's record, every reference (at any depth) to the original UID,
its own UIDs new (and the same on a second mapping), its series marked as research; a
reference that maps to nothing holds it, with the attribute's path."""

from __future__ import annotations

import io
import shutil

import pydicom
import pytest
from giftcloud_deid import Deidentifier, ProjectKeys
from giftcloud_deid.reidentify import MARK, Unmappable, inverse, read, reidentify
from giftcloud_deid.vault import VaultRecord
from support.results import ct_series, segmentation

KEYS = ProjectKeys.derive(b"k" * 32, "demo")


def _site(slices: int = 3) -> tuple[list[bytes], list[bytes], list[VaultRecord], set[str]]:
    originals = ct_series(slices, "MRN-77")
    engine = Deidentifier(KEYS)
    done = [engine.deidentify(data) for data in originals]
    first = done[0]
    record = VaultRecord(
        subject=first.subject,
        patient_id=first.identity.patient_id,
        issuer=first.identity.issuer,
        name=first.identity.name,
        birth_date=first.identity.birth_date,
        study_uid=first.identity.study_uid,
        pseudonymised_study_uid=first.study_uid,
    )
    uids = set().union(*(d.identity.uids for d in done))
    return originals, [d.data for d in done], [record], uids


def _read(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(data))


def _back(data: bytes, records: list[VaultRecord], uids: set[str]) -> bytes:
    """The result mapped back, as anonymise does it."""
    return reidentify(read(data), KEYS, records, inverse(KEYS, records, uids))


def test_a_segmentation_comes_back_with_the_originals() -> None:
    originals, deidentified, records, uids = _site()
    seg = segmentation(deidentified)
    back = _read(_back(seg, records, uids))
    source = [_read(o) for o in originals]
    hub = _read(seg)
    assert (str(back.PatientName), back.PatientID) == ("Quill^Ada", "MRN-77")
    assert back.PatientBirthDate == "19700101" and back.PatientIdentityRemoved == "NO"
    assert "DeidentificationMethodCodeSequence" not in back
    assert back.StudyInstanceUID == source[0].StudyInstanceUID
    assert back.FrameOfReferenceUID == source[0].FrameOfReferenceUID
    referenced = back.ReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == source[0].SeriesInstanceUID
    assert {i.ReferencedSOPInstanceUID for i in referenced.ReferencedInstanceSequence} == {
        s.SOPInstanceUID for s in source
    }
    deep = {  # the per-frame references, two sequences down
        item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        for item in back.PerFrameFunctionalGroupsSequence
    }
    assert deep == {s.SOPInstanceUID for s in source}
    # its own identity is new, and stable
    assert back.SOPInstanceUID not in (hub.SOPInstanceUID, *(s.SOPInstanceUID for s in source))
    assert back.SeriesInstanceUID != hub.SeriesInstanceUID
    assert back.file_meta.MediaStorageSOPInstanceUID == back.SOPInstanceUID
    assert _read(_back(seg, records, uids)).SOPInstanceUID == back.SOPInstanceUID
    assert back.SeriesDescription.startswith(MARK)
    # nothing of the hub's pseudonyms is left
    text = str(back)
    assert hub.PatientID not in text and hub.StudyInstanceUID not in text


def test_a_reference_that_maps_to_nothing_holds_the_result_with_its_path() -> None:
    _, deidentified, records, uids = _site()
    seg = _read(segmentation(deidentified))
    seg.PerFrameFunctionalGroupsSequence[1].DerivationImageSequence[0].SourceImageSequence[
        0
    ].ReferencedSOPInstanceUID = "2.25.1234"
    out = io.BytesIO()
    seg.save_as(out)
    with pytest.raises(Unmappable) as refused:
        _back(out.getvalue(), records, uids)
    assert (
        "PerFrameFunctionalGroupsSequence[2] > DerivationImageSequence[1] > "
        "SourceImageSequence[1] > ReferencedSOPInstanceUID 2.25.1234 names nothing"
    ) in str(refused.value)


def test_a_study_this_site_never_sent_is_named() -> None:
    _, deidentified, records, uids = _site()
    other = ct_series(2, "MRN-99")  # identifiable: its study is nobody's pseudonym here
    with pytest.raises(Unmappable, match="is no study this site sent"):
        _back(segmentation(other), records, uids)


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools is not installed")
def test_the_mapped_segmentation_passes_dciodvfy() -> None:
    import asyncio

    from giftcloud_anonymise.returning.validate import iod_errors

    _, deidentified, records, uids = _site()
    back = _back(segmentation(deidentified), records, uids)
    assert asyncio.run(iod_errors(back)) == []


def test_a_segmentation_renders_as_labelled_secondary_captures() -> None:
    """One capture per segmented source image, the outline and label burned in, the
    re-identified patient and the original source named; dciodvfy clean where installed."""
    import asyncio

    import numpy as np
    from giftcloud_anonymise.returning.render import Plan, render
    from giftcloud_anonymise.returning.validate import iod_errors

    originals, deidentified, records, uids = _site(slices=3)
    seg = segmentation(deidentified)
    mapped = _read(_back(seg, records, uids))
    plan = Plan.of(_read(seg))
    masks = plan.masks
    hub = _read(deidentified[0])
    assert set(plan.sources.values()) == {(hub.StudyInstanceUID, hub.SeriesInstanceUID)}
    sources = {_read(d).SOPInstanceUID: d for d in deidentified}
    assert set(sop for sop, _ in masks) == set(sources)
    captures = render(mapped, masks, sources, inverse(KEYS, records, uids), KEYS)
    assert len(captures) == 3
    first = _read(captures[0])
    assert first.PatientID == "MRN-77" and first.BurnedInAnnotation == "YES"
    assert first.SeriesDescription.startswith("NOT FOR DIAGNOSIS")
    assert first.StudyInstanceUID == _read(originals[0]).StudyInstanceUID
    assert first.SourceImageSequence[0].ReferencedSOPInstanceUID in {
        _read(o).SOPInstanceUID for o in originals
    }
    rgb = first.pixel_array
    assert rgb.shape[0] >= 256 and rgb.shape[2] == 3
    assert (np.all(rgb == [255, 40, 40], axis=2)).sum() > 0  # the outline
    top = rgb[:16]  # the label, yellow on black (anti-aliased)
    assert ((top[..., 0] > 180) & (top[..., 1] > 180) & (top[..., 2] < 100)).sum() > 20
    if shutil.which("dciodvfy"):
        assert asyncio.run(iod_errors(captures[0])) == []

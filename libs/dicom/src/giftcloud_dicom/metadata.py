"""DICOM JSON metadata, computed once per instance: by archive when it is archived, by the
catalogue's repair when an object and its row disagree."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pydicom
from pydicom.dataelem import DataElement

from giftcloud_dicom.fast_json import fast_json
from giftcloud_dicom.part10 import is_deflated, open_part10, transfer_syntax_of, undeflate
from giftcloud_dicom.quiet import quiet

PIXEL_TAGS = {"7FE00010", "7FE00008", "7FE00009"}


@dataclass(frozen=True)
class Summary:
    modality: str
    study_date: str
    study_description: str
    series_description: str
    series_number: int | None
    instance_number: int | None
    transfer_syntax_uid: str


def bulk_uri(project: str, study: str, series: str, sop: str) -> str:
    """Where an instance's bulk data is served (WADO-RS), the base of its BulkDataURIs."""
    return f"/dicomweb/{project}/studies/{study}/series/{series}/instances/{sop}/bulk"


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _text(value: object) -> str:
    return str(value or "").replace("\x00", "")


def _without_nul(value: Any) -> Any:
    """The DICOM JSON without NUL characters, which no PostgreSQL text or JSONB value holds
    (ingest refuses them at the top level; a nested one is dropped here)."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {k: _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


def describe(data: bytes, bulk_uri: str, max_inflated: int) -> tuple[dict[str, Any], Summary]:
    """The instance's DICOM JSON (bulk data as BulkDataURIs under ``bulk_uri``) and a summary.

    The common instance is read by the raw reader (:mod:`giftcloud_dicom.fast_json`),
    anything else by pydicom; both make the same JSON. A deflated instance is inflated as a
    stream, never past ``max_inflated`` bytes.
    """
    fast = None if is_deflated(data) else _fast(data, bulk_uri)
    if fast is not None:
        return fast
    return describe_with_pydicom(data, bulk_uri, max_inflated)


def _fast(data: bytes, bulk_uri: str) -> tuple[dict[str, Any], Summary] | None:
    try:
        part = open_part10(data)
        stored = transfer_syntax_of(data)
    except (ValueError, KeyError):
        return None
    if part.syntax.implicit or not part.syntax.little or part.transfer_syntax != stored:
        return None  # implicit, big-endian, or not encoded as its meta says: pydicom's
    metadata = fast_json(part.buf, part.start, part.transfer_syntax, bulk_uri)
    if metadata is None:
        return None
    values = {t: metadata.get(t, {}).get("Value", []) for t in _SUMMARY_TAGS}
    if any(len(v) > 1 for v in values.values()):
        return None  # a multi-valued one is summed up as pydicom prints it: pydicom's
    first = {t: (v[0] if v else "") for t, v in values.items()}
    for tag in PIXEL_TAGS & set(metadata):
        metadata[tag] = {"vr": metadata[tag]["vr"], "BulkDataURI": f"{bulk_uri}/{tag}"}
    metadata["00020010"] = {"vr": "UI", "Value": [part.transfer_syntax]}
    summary = Summary(
        modality=_text(first["00080060"]),
        study_date=_text(first["00080020"]),
        study_description=_text(first["00081030"]),
        series_description=_text(first["0008103E"]),
        series_number=_int(first["00200011"]) if first["00200011"] != "" else None,
        instance_number=_int(first["00200013"]) if first["00200013"] != "" else None,
        transfer_syntax_uid=part.transfer_syntax,
    )
    return _without_nul(metadata), summary


#: Modality, StudyDate, StudyDescription, SeriesDescription, SeriesNumber, InstanceNumber
_SUMMARY_TAGS = ("00080060", "00080020", "00081030", "0008103E", "00200011", "00200013")


def describe_with_pydicom(
    data: bytes, bulk_uri: str, max_inflated: int
) -> tuple[dict[str, Any], Summary]:
    """:func:`describe` by pydicom, for any instance."""
    with quiet():
        ds = pydicom.dcmread(io.BytesIO(undeflate(data, max_inflated=max_inflated)))
        stored_syntax = transfer_syntax_of(data)

        def bulk(element: DataElement) -> str:
            return f"{bulk_uri}/{element.tag:08X}"

        # an odd value (an IS of '1A') is left out of the metadata, not a reason to refuse
        metadata = ds.to_json_dict(
            bulk_data_threshold=1024, bulk_data_element_handler=bulk, suppress_invalid_tags=True
        )
        for tag in PIXEL_TAGS & set(metadata):  # pixels are never inline, however small
            metadata[tag] = {"vr": metadata[tag]["vr"], "BulkDataURI": f"{bulk_uri}/{tag}"}
        # the transfer syntax is where a client learns how to read the pixel data
        metadata["00020010"] = {"vr": "UI", "Value": [stored_syntax]}
        metadata = _without_nul(metadata)
        summary = Summary(
            modality=_text(ds.get("Modality")),
            study_date=_text(ds.get("StudyDate")),
            study_description=_text(ds.get("StudyDescription")),
            series_description=_text(ds.get("SeriesDescription")),
            series_number=_int(ds.get("SeriesNumber")),
            instance_number=_int(ds.get("InstanceNumber")),
            transfer_syntax_uid=stored_syntax,
        )
    return metadata, summary

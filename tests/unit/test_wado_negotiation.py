"""WADO-RS content negotiation (PS3.18 §8.7.3): Explicit VR Little Endian when no transfer
syntax is named, as stored for ``*``, transcoded to an offered syntax, and 406 with the
reason for what cannot be met."""

import re

import pytest
from giftcloud_api.dicomweb.negotiation import Answer, frames_wanted, json_accepted, negotiate
from giftcloud_api.models import Instance
from giftcloud_core.errors import NotAcceptable

EXPLICIT = "1.2.840.10008.1.2.1"
JPEG = "1.2.840.10008.1.2.4.50"
JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"  # no encoder here
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
RLE = "1.2.840.10008.1.2.5"


def _instance(syntax: str) -> Instance:
    return Instance(
        project="p",
        sop_uid="1.2",
        series_uid="1.3",
        study_uid="1.4",
        subject="S",
        sop_class_uid="1.5",
        object_key="k",
        size=1,
        sha256="0",
        transfer_syntax_uid=syntax,
    )


@pytest.mark.parametrize(
    ("accept", "answer"),
    [
        ("", Answer("multipart", "")),
        ("*/*", Answer("multipart", "")),
        ('multipart/related; type="application/dicom"', Answer("multipart", "")),
        ('multipart/related; type="application/dicom"; transfer-syntax=*', Answer("multipart", "*")),
        (f'multipart/related; type="application/dicom"; transfer-syntax={RLE}', Answer("multipart", RLE)),
        ("application/dicom", Answer("bare", "")),
        (f"application/dicom; transfer-syntax={EXPLICIT}", Answer("bare", EXPLICIT)),
        # the first acceptable in order of preference: JPEG extended has no encoder here
        (f"application/dicom; transfer-syntax={JPEG_EXTENDED}, multipart/related; q=0.5", Answer("multipart", "")),
        (f"application/dicom; transfer-syntax={JPEG}", Answer("bare", JPEG)),  # lossy, by name
        ("image/jpeg, application/dicom;q=0.9", Answer("bare", "")),
    ],
)  # fmt: skip
def test_one_instance(accept: str, answer: Answer) -> None:
    assert negotiate(accept, [_instance(J2K_LOSSLESS)], single=True) == answer


def test_the_syntax_each_instance_goes_in() -> None:
    explicit, j2k = _instance(EXPLICIT), _instance(J2K_LOSSLESS)
    default = negotiate("", [explicit, j2k], single=False)
    # no syntax named: Explicit VR Little Endian (what is stored so stays as it is)
    assert (default.target(explicit), default.target(j2k)) == (None, EXPLICIT)
    stored = negotiate("multipart/related; transfer-syntax=*", [explicit, j2k], single=False)
    assert (stored.target(explicit), stored.target(j2k)) == (None, None)
    rle = negotiate(f"multipart/related; transfer-syntax={RLE}", [explicit, j2k], single=False)
    assert (rle.target(explicit), rle.target(j2k)) == (RLE, RLE)


def test_a_study_is_multipart_or_a_zip_of_the_instances_as_stored() -> None:
    both = [_instance(EXPLICIT), _instance(JPEG)]
    assert negotiate("application/dicom", both, single=False).how == "multipart"
    assert negotiate("application/zip", both, single=False) == Answer("zip", "*")
    with pytest.raises(NotAcceptable, match="a zip holds the instances as stored"):
        negotiate(f"application/zip; transfer-syntax={EXPLICIT}", both, single=False)


@pytest.mark.parametrize(
    ("accept", "stored", "reason"),
    [
        (f"multipart/related; transfer-syntax={JPEG_EXTENDED}", EXPLICIT, f"{JPEG_EXTENDED} is not offered"),
        (f"multipart/related; transfer-syntax={RLE}", JPEG, "(lossy) cannot be given in the lossless"),
        ("image/jpeg", EXPLICIT, "returns DICOM instances"),
        ('multipart/related; type="image/jpeg"', EXPLICIT, "returns DICOM instances"),
        ("application/zip", EXPLICIT, "application/zip for a study"),  # one instance: not a zip
    ],
)  # fmt: skip
def test_what_cannot_be_met_is_406_with_the_reason(accept: str, stored: str, reason: str) -> None:
    with pytest.raises(NotAcceptable, match=reason.replace("(", r"\(").replace(")", r"\)")):
        negotiate(accept, [_instance(stored)], single=True)


def test_a_lossy_instance_still_goes_uncompressed_by_default() -> None:
    answer = negotiate("", [_instance(JPEG)], single=True)
    assert answer.target(_instance(JPEG)) == EXPLICIT


J2K_LOSSY = "1.2.840.10008.1.2.4.91"


@pytest.mark.parametrize(
    ("accept", "stored_type", "stored", "how"),
    [
        # no type named: native pixels (PS3.18's default for frames)
        ("", "image/jp2", J2K_LOSSLESS, "decoded"),
        ("*/*", "image/jp2", J2K_LOSSLESS, "decoded"),
        ("*/*", "application/octet-stream", EXPLICIT, "stored"),
        ('multipart/related; type="application/octet-stream"; transfer-syntax=*', "image/jp2", J2K_LOSSLESS, "decoded"),
        # any type of part, or the stored one: as stored
        ("multipart/related; type=*/*", "image/jp2", J2K_LOSSLESS, "stored"),
        ('multipart/related; type="image/jp2"', "image/jp2", J2K_LOSSY, "stored"),
        (f'multipart/related; type="image/jp2"; transfer-syntax={J2K_LOSSLESS}', "image/jp2", J2K_LOSSLESS, "stored"),
        # another lossless bitstream: transcoded
        ('multipart/related; type="image/dicom-rle"', "image/jp2", J2K_LOSSLESS, RLE),
        ('multipart/related; type="image/jls"', "application/octet-stream", EXPLICIT, "1.2.840.10008.1.2.4.80"),
        ('multipart/related; type="image/jp2"', "application/octet-stream", EXPLICIT, J2K_LOSSLESS),
    ],
)  # fmt: skip
def test_frames(accept: str, stored_type: str, stored: str, how: str) -> None:
    assert frames_wanted(accept, stored_type, stored) == how


@pytest.mark.parametrize(
    ("accept", "stored_type", "stored", "reason"),
    [
        ('multipart/related; type="image/jpx"', "application/octet-stream", EXPLICIT, "transcoded to image/jpeg, image/jls"),
        ('multipart/related; type="image/dicom-rle"', "image/jpeg", JPEG, "(lossy) cannot be given"),
        (f'multipart/related; type="image/jp2"; transfer-syntax={J2K_LOSSY}', "image/jp2", J2K_LOSSLESS, "transcoded to"),
    ],
)  # fmt: skip
def test_frames_that_cannot_be_met_are_406_with_the_reason(
    accept: str, stored_type: str, stored: str, reason: str
) -> None:
    with pytest.raises(NotAcceptable, match=re.escape(reason)):
        frames_wanted(accept, stored_type, stored)


@pytest.mark.parametrize(
    "accept",
    ["", "*/*", "application/dicom+json", "application/json", "text/html, */*;q=0.8",
     "application/dicom+xml, application/dicom+json;q=0.5"],
)  # fmt: skip
def test_json_answers_what_takes_json(accept: str) -> None:
    json_accepted(accept)


@pytest.mark.parametrize(
    "accept",
    ['multipart/related; type="application/dicom+xml"', "application/dicom+xml", "image/png",
     "application/dicom+json;q=0"],
)  # fmt: skip
def test_json_refuses_what_does_not_take_it_with_the_reason(accept: str) -> None:
    with pytest.raises(NotAcceptable, match="application/dicom\\+json"):
        json_accepted(accept)

"""WADO-RS content negotiation: instances go as stored; anything else is 406 with a reason."""

import pytest
from giftcloud_api.dicomweb.negotiation import negotiate
from giftcloud_api.models import Instance
from giftcloud_core.errors import NotAcceptable

EXPLICIT = "1.2.840.10008.1.2.1"
JPEG = "1.2.840.10008.1.2.4.50"


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
    ("accept", "how"),
    [
        ("", "multipart"),
        ("*/*", "multipart"),
        ('multipart/related; type="application/dicom"', "multipart"),
        ('multipart/related; type="application/dicom"; transfer-syntax=*', "multipart"),
        (f'multipart/related; type="application/dicom"; transfer-syntax={EXPLICIT}', "multipart"),
        ("application/dicom", "bare"),
        (f"application/dicom; transfer-syntax={EXPLICIT}", "bare"),
        # the first acceptable in order of preference
        (f"application/dicom; transfer-syntax={JPEG}, multipart/related; q=0.5", "multipart"),
        ("image/jpeg, application/dicom;q=0.9", "bare"),
    ],
)
def test_one_instance(accept: str, how: str) -> None:
    assert negotiate(accept, [_instance(EXPLICIT)], single=True) == how


def test_a_study_is_always_multipart_and_every_instance_must_match_the_syntax() -> None:
    both = [_instance(EXPLICIT), _instance(JPEG)]
    assert negotiate("application/dicom", both, single=False) == "multipart"
    assert negotiate("multipart/related; transfer-syntax=*", both, single=False) == "multipart"
    with pytest.raises(NotAcceptable, match="as stored"):
        negotiate(f"multipart/related; transfer-syntax={EXPLICIT}", both, single=False)
    assert negotiate("application/zip", both, single=False) == "zip"


@pytest.mark.parametrize(
    ("accept", "reason"),
    [
        (f"multipart/related; transfer-syntax={JPEG}", "transcoding"),
        ("image/jpeg", "returns DICOM instances"),
        ('multipart/related; type="image/jpeg"', "returns DICOM instances"),
        ("application/zip", "application/zip for a study"),  # one instance: not a zip
    ],
)
def test_what_cannot_be_met_is_406_with_the_reason(accept: str, reason: str) -> None:
    with pytest.raises(NotAcceptable, match=reason):
        negotiate(accept, [_instance(EXPLICIT)], single=True)

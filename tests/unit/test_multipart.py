import pytest
from giftcloud.client import multipart_related
from giftcloud_core.errors import BadRequest, UnsupportedMediaType
from giftcloud_ingest.multipart import boundary_of, split_parts


def test_round_trip_of_binary_parts() -> None:
    files = [b"\r\n--looks-like-a-boundary\r\n", bytes(range(256)) * 3, b""]
    body, content_type = multipart_related(files)
    parts = split_parts(body, boundary_of(content_type))
    assert [p.body for p in parts] == files
    assert {p.content_type for p in parts} == {"application/dicom"}


def test_parts_without_headers_and_quoted_boundary() -> None:
    body = b"preamble\r\n--b1\r\n\r\nONE\r\n--b1\r\nContent-Type: application/dicom\r\n\r\nTWO\r\n--b1--\r\n"
    parts = split_parts(
        body, boundary_of('multipart/related; type="application/dicom"; boundary="b1"')
    )
    assert [p.body for p in parts] == [b"ONE", b"TWO"]


def test_truncated_body_is_a_bad_request() -> None:
    body, content_type = multipart_related([b"x" * 100])
    with pytest.raises(BadRequest, match="closing boundary"):
        split_parts(body[:60], boundary_of(content_type))


@pytest.mark.parametrize(
    "content_type",
    [
        "application/dicom",
        "multipart/form-data; boundary=x",
        'multipart/related; type="image/jpeg"; boundary=x',
        "",
    ],
)
def test_other_media_types_are_refused(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType):
        boundary_of(content_type)


def test_missing_boundary() -> None:
    with pytest.raises(BadRequest, match="boundary"):
        boundary_of('multipart/related; type="application/dicom"')

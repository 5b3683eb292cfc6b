import pytest
from giftcloud.client import multipart_related
from giftcloud_dicom.multipart import (
    BadRequest,
    Part,
    PartReader,
    PayloadTooLarge,
    UnsupportedMediaType,
    boundary_of,
)
from hypothesis import given, settings
from hypothesis import strategies as st


def read(
    body: bytes,
    content_type: str,
    chunk: int = 65536,
    max_part_bytes: int = 1 << 30,
    max_parts: int = 10_000,
) -> list[Part]:
    reader = PartReader(
        boundary_of(content_type), max_part_bytes=max_part_bytes, max_parts=max_parts
    )
    parts: list[Part] = []
    for start in range(0, len(body), chunk):
        parts += reader.feed(body[start : start + chunk])
    reader.close()
    return parts


def test_round_trip_of_binary_parts() -> None:
    files = [b"\r\n--looks-like-a-boundary\r\n", bytes(range(256)) * 3, b""]
    body, content_type = multipart_related(files)
    parts = read(body, content_type)
    assert [p.body for p in parts] == files
    assert {p.content_type for p in parts} == {"application/dicom"}


@settings(max_examples=60, deadline=None)
@given(
    files=st.lists(st.binary(max_size=300), min_size=1, max_size=6),
    chunk=st.integers(min_value=1, max_value=97),
)
def test_any_chunking_gives_the_same_parts(files: list[bytes], chunk: int) -> None:
    body, content_type = multipart_related(files)
    assert [p.body for p in read(body, content_type, chunk=chunk)] == files


def test_parts_without_headers_preamble_and_quoted_boundary() -> None:
    body = b"preamble\r\n--b1\r\n\r\nONE\r\n--b1\r\nContent-Type: application/dicom\r\n\r\nTWO\r\n--b1--\r\nepilogue"
    for chunk in (1, 3, 1000):
        parts = read(body, 'multipart/related; type="application/dicom"; boundary="b1"', chunk)
        assert [p.body for p in parts] == [b"ONE", b"TWO"]


def test_truncated_body_is_a_bad_request() -> None:
    body, content_type = multipart_related([b"x" * 100])
    with pytest.raises(BadRequest, match="closing boundary"):
        read(body[:60], content_type)


def test_body_without_a_boundary_is_a_bad_request() -> None:
    with pytest.raises(BadRequest, match="boundary"):
        read(b"x" * 70_000, 'multipart/related; type="application/dicom"; boundary=b1', 1000)


def test_a_part_past_its_ceiling_is_counted_not_kept() -> None:
    body, content_type = multipart_related([b"a" * 10, b"b" * 5000, b"c" * 10])
    parts = read(body, content_type, chunk=100, max_part_bytes=1000)
    assert [(p.size, p.too_large, p.body[:1]) for p in parts] == [
        (10, False, b"a"),
        (5000, True, b""),
        (10, False, b"c"),
    ]


def test_too_many_parts_is_refused() -> None:
    body, content_type = multipart_related([b"x"] * 50)
    with pytest.raises(PayloadTooLarge, match="more than 20 parts"):
        read(body, content_type, max_parts=20)


def test_part_content_type_is_reported() -> None:
    body = b'--b\r\nContent-Type: image/jpeg; q="1"\r\n\r\nJPEG\r\n--b--\r\n'
    (part,) = read(body, "multipart/related; boundary=b")
    assert part.content_type == "image/jpeg"


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

import pytest
from giftcloud_core.bundle import MAGIC, MalformedBundle, pack, unpack
from hypothesis import given
from hypothesis import strategies as st


@given(st.lists(st.binary(max_size=300), max_size=20))
def test_files_come_back_whole_and_in_order(files: list[bytes]) -> None:
    assert unpack(pack(files)) == files


@given(st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=5), st.data())
def test_a_cut_bundle_is_refused_never_read_short(files: list[bytes], data: st.DataObject) -> None:
    bundle = pack(files)
    cut = data.draw(st.integers(min_value=len(MAGIC) + 1, max_value=len(bundle) - 1))
    with pytest.raises(MalformedBundle, match="truncated"):
        unpack(bundle[:cut])


def test_bytes_that_are_not_a_bundle_are_refused() -> None:
    with pytest.raises(MalformedBundle, match="not a giftcloud bundle"):
        unpack(b"\x00" * 128 + b"DICM")


def test_bytes_after_the_last_file_are_refused() -> None:
    with pytest.raises(MalformedBundle, match="after the last"):
        unpack(pack([b"one"]) + b"more")

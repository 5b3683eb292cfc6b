"""Results back from the hub, the pure parts: where the next pull starts, and a C-STORE
answer in words."""

from datetime import UTC, datetime, timedelta

from giftcloud_ingest.retrieval.scu import STORED, store_status_text
from giftcloud_ingest.returns.puller import OVERLAP, PAGE, _next_cursor
from pydicom.dataset import Dataset

T0 = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


def _results(n: int, start: datetime = T0) -> list[dict[str, str]]:
    return [{"at": (start + timedelta(seconds=i)).isoformat()} for i in range(n)]


def test_a_pull_starts_a_little_before_the_newest_result_it_saw() -> None:
    assert _next_cursor(None, []) is None
    assert _next_cursor(T0, []) == T0  # nothing new: where it was
    newest = T0 + timedelta(seconds=9)
    assert _next_cursor(None, _results(10)) == newest - OVERLAP


def test_after_a_full_page_the_next_starts_at_its_newest_and_never_goes_back() -> None:
    full = _results(PAGE)
    newest = T0 + timedelta(seconds=PAGE - 1)
    assert _next_cursor(T0, full) == newest  # more wait behind it: no overlap, no loop
    # a short page right after: the overlap would go back before the cursor, it does not
    assert _next_cursor(newest, _results(3, newest)) == newest


def _status(code: int, comment: str = "") -> Dataset:
    ds = Dataset()
    ds.Status = code
    if comment:
        ds.ErrorComment = comment
    return ds


def test_a_c_store_answer_says_what_it_means_for_a_store() -> None:
    assert store_status_text(_status(0)) == "success (0x0000)"
    assert 0xB000 in STORED and "coerced" in store_status_text(_status(0xB000))
    refused = store_status_text(_status(0xA900, "bad IOD"))
    assert refused == (
        "the node refused it: the data set does not match its SOP class (0xA900): bad IOD"
    )
    assert 0xA900 not in STORED
    assert "out of resources" in store_status_text(_status(0xA702))
    assert "SOP class not supported" in store_status_text(_status(0x0122))
    assert store_status_text(None).startswith("no answer from the node")

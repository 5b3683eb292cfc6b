"""What passes between a hub and a site: a question the site cannot read is refused with
the reason; the hub pools released cells only."""

from datetime import UTC, datetime

from giftcloud_api.federation.hub import pool
from giftcloud_api.federation.poller import read_task
from giftcloud_api.federation.schemas import CellOut, PartOut, SiteAnswer, Task

ASKED = {
    "id": "q1",
    "project": "cohort",
    "kind": "count",
    "question": {"group_by": ["patient_sex"]},
    "asked_by": "rosa",
    "asked_at": "2026-12-05T10:00:00Z",
}


def test_a_question_is_read_and_one_of_a_newer_hub_is_refused_saying_why() -> None:
    assert isinstance(read_task(ASKED), Task)
    newer = {**ASKED, "question": {"group_by": ["tumour_grade"]}}
    refused = read_task(newer)
    assert isinstance(refused, SiteAnswer) and refused.state == "refused"
    assert "this site cannot read the question" in refused.reason
    assert "'tumour_grade' cannot group a count" in refused.reason


def _part(site: str, state: str, cells: dict[str, int | None], total: int | None) -> PartOut:
    answer = SiteAnswer(
        state="answered",
        cells=[CellOut(key=[k], count=n, rule="") for k, n in cells.items()],
        total=total,
        k=10,
    )
    return PartOut(
        site=site,
        state=state,  # type: ignore[arg-type]
        reason="",
        answered_at=datetime.now(UTC),
        answer=answer if state == "answered" else None,
    )


def test_the_pool_adds_released_cells_and_marks_withheld_ones() -> None:
    pooled = pool(
        [
            _part("a", "answered", {"F": 20, "M": None, "O": None}, 35),
            _part("b", "answered", {"F": 12, "M": 11}, 23),
            _part("c", "answered", {"F": None, "M": None}, None),
            _part("d", "failed", {}, None),
        ]
    )
    cells = {tuple(c.key): (c.count, c.partial, c.sites) for c in pooled.cells}
    assert cells == {
        ("F",): (32, True, ["a", "b"]),
        ("M",): (11, True, ["b"]),
        ("O",): (0, True, []),
    }
    assert pooled.total == 58 and pooled.sites == ["a", "b"]

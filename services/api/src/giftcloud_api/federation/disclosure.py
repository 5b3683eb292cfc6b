"""A site's disclosure control, applied before an answer leaves: cells below the site's k
are suppressed ("< k"), then more cells so that no released total or released cells reveal
a suppressed one by subtraction (secondary suppression), and, when the question asks for it,
noise from OpenDP's discrete Laplace mechanism calibrated to the question's epsilon. Each
released value says which rule decided it. Pure: no database, no network."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from giftcloud_api.federation.criteria import Key

#: the smallest k a site may set (the issue's floor; a site's default is 10)
K_FLOOR = 5

RELEASED = "released: at least k"
BELOW_K = "suppressed: below k"
SECONDARY = "suppressed: secondary, so that totals cannot reveal a suppressed cell"
TOTAL_BELOW_K = "suppressed: the total is below k"
TOTAL_REVEALS = "suppressed: with the released cells it would reveal a suppressed one"
NOISY = "released: at least k after noise"


@dataclass(frozen=True)
class Cell:
    key: Key
    #: None when suppressed: the answer says "< k"
    count: int | None
    rule: str


@dataclass(frozen=True)
class Released:
    cells: list[Cell]
    total: int | None
    total_rule: str
    k: int


def lines(keys: Iterable[Key]) -> list[list[Key]]:
    """The sets of cells a total can be known for: all of them, and for two grouping
    attributes each row and each column (their totals are the one-attribute questions)."""
    keys = sorted(keys)
    found = [keys]
    if keys and len(keys[0]) == 2:
        for axis in (0, 1):
            groups: dict[str, list[Key]] = {}
            for key in keys:
                groups.setdefault(key[axis], []).append(key)
            found.extend(groups.values())
    return found


def protect(cells: Mapping[Key, int], total: int, k: int) -> Released:
    """Primary suppression (0 < n < k), then secondary: in every line with a suppressed
    cell, at least two are suppressed and together they hold at least k, or the whole line
    is; the smallest released cell is suppressed next (ties by key, so the same table
    always gets the same answer)."""
    if total < k:
        withheld = [Cell(key, None, TOTAL_BELOW_K) for key in sorted(cells)]
        return Released(withheld, None, TOTAL_BELOW_K, k)
    rule = {key: (BELOW_K if count < k else RELEASED) for key, count in cells.items()}
    changed = True
    while changed:
        changed = False
        for line in lines(cells):
            hidden = [key for key in line if rule[key] != RELEASED]
            if not hidden or len(hidden) == len(line):
                continue
            if len(hidden) >= 2 and sum(cells[key] for key in hidden) >= k:
                continue
            shown = [key for key in line if rule[key] == RELEASED]
            rule[min(shown, key=lambda key: (cells[key], key))] = SECONDARY
            changed = True
    released = [
        Cell(key, cells[key] if rule[key] == RELEASED else None, rule[key]) for key in sorted(cells)
    ]
    hidden = [key for key in cells if rule[key] != RELEASED]
    # the total minus the released cells is the suppressed cells' sum: one cell, or below k
    if hidden and (len(hidden) < 2 or sum(cells[key] for key in hidden) < k):
        return Released(released, None, TOTAL_REVEALS, k)
    return Released(released, total, RELEASED, k)


def noisy(cells: Mapping[Key, int], epsilon: float, sensitivity: int) -> dict[Key, int]:
    """Each count with discrete Laplace noise of scale sensitivity/epsilon (one unit in at
    most ``sensitivity`` cells changes the vector by that much in L1), never below 0."""
    keys = sorted(cells)
    if not keys:
        return {}
    # OpenDP's library takes a second to load: paid by the first noisy question, not by
    # every start of api
    import opendp.prelude as dp

    dp.enable_features("contrib")
    mechanism = dp.m.make_laplace(
        dp.vector_domain(dp.atom_domain(T=int)),
        dp.l1_distance(T=int),
        scale=sensitivity / epsilon,
    )
    assert mechanism.map(sensitivity) <= epsilon + 1e-9  # type: ignore[no-untyped-call]  # the privacy loss is what is charged
    values = mechanism([cells[key] for key in keys])
    return {key: max(0, int(value)) for key, value in zip(keys, values, strict=True)}


def protect_noisy(cells: Mapping[Key, int], k: int) -> Released:
    """Noisy counts: a cell below k after noise is left out of the answer altogether (its
    existence is not shown: a stability-based histogram), the total is the noisy cells' sum
    (post-processing spends no budget), released when at least k."""
    shown = [Cell(key, count, NOISY) for key, count in sorted(cells.items()) if count >= k]
    total = sum(cells.values())
    if total < k:
        return Released(shown, None, TOTAL_BELOW_K, k)
    return Released(shown, total, NOISY, k)

"""The memory budget: work waits while the bytes in hand would pass the limit."""

import asyncio

import pytest
from giftcloud_core.budget import MemoryBudget


async def test_bytes_in_hand_never_pass_the_limit_and_everything_runs() -> None:
    budget = MemoryBudget(100)
    peak = 0
    done: list[int] = []

    async def work(n: int, size: int) -> None:
        nonlocal peak
        async with budget.hold(size):
            peak = max(peak, budget.held)
            await asyncio.sleep(0.001 * (n % 3))
            done.append(n)

    sizes = [10, 60, 30, 90, 5, 50, 100, 1, 40, 70] * 3
    await asyncio.gather(*(work(n, size) for n, size in enumerate(sizes)))
    assert sorted(done) == list(range(len(sizes)))
    assert peak <= 100
    assert budget.held == 0


async def test_small_work_runs_together_and_one_oversized_item_runs_alone() -> None:
    budget = MemoryBudget(100)
    together = 0
    most = 0

    async def work(size: int) -> None:
        nonlocal together, most
        async with budget.hold(size):
            together += 1
            most = max(most, together)
            await asyncio.sleep(0.01)
            together -= 1

    await asyncio.gather(*(work(10) for _ in range(10)))
    assert most == 10  # ten of 10 bytes fit at once
    most = 0
    await asyncio.gather(work(500), work(10))  # 500 > the budget: it takes it all
    assert most == 1


async def test_a_failing_handler_gives_its_share_back() -> None:
    budget = MemoryBudget(10)
    with pytest.raises(RuntimeError):
        async with budget.hold(10):
            raise RuntimeError("boom")
    assert budget.held == 0
    async with budget.hold(10):
        assert budget.held == 10

"""The micro-batcher: one write for many waiters, each waiter learns its write's fate."""

import asyncio

import pytest
from giftcloud_core.batching import Batcher


async def test_concurrent_submissions_share_writes_and_wait_for_them() -> None:
    writes: list[list[int]] = []
    committed: set[int] = set()

    async def flush(items: list[int]) -> None:
        await asyncio.sleep(0.01)
        writes.append(items)
        committed.update(items)

    batcher = Batcher(flush, max_items=10, max_delay=0.005)

    async def handler(n: int) -> None:
        await batcher.submit(n)
        assert n in committed  # returns only after its own row is written

    await asyncio.gather(*(handler(n) for n in range(35)))
    assert sorted(i for w in writes for i in w) == list(range(35))
    assert len(writes) <= 6
    assert max(len(w) for w in writes) == 10


async def test_a_failed_write_fails_every_waiter_of_that_batch_only() -> None:
    calls = 0

    async def flush(items: list[str]) -> None:
        nonlocal calls
        calls += 1
        if "bad" in items:
            raise RuntimeError("database said no")

    batcher = Batcher(flush, max_items=2, max_delay=0.005)
    results = await asyncio.gather(
        batcher.submit("bad"),
        batcher.submit("x"),
        batcher.submit("ok"),
        batcher.submit("y"),
        return_exceptions=True,
    )
    assert [type(r).__name__ for r in results] == [
        "RuntimeError",
        "RuntimeError",
        "NoneType",
        "NoneType",
    ]
    assert calls == 2
    with pytest.raises(RuntimeError):
        await batcher.submit("bad")


async def test_a_group_is_written_whole_in_one_write() -> None:
    writes: list[list[int]] = []

    async def flush(items: list[int]) -> None:
        writes.append(items)

    batcher = Batcher(flush, max_items=4, max_delay=0.005)
    groups = [[1, 2, 3], [10, 11, 12, 13, 14, 15], [20]]
    await asyncio.gather(*(batcher.submit_all(g) for g in groups), batcher.submit_all([]))
    for group in groups:  # every group lands in one write, in its order
        [write] = [w for w in writes if group[0] in w]
        start = write.index(group[0])
        assert write[start : start + len(group)] == group
    assert sorted(i for w in writes for i in w) == sorted(i for g in groups for i in g)


async def test_an_eager_batcher_writes_a_lone_item_at_once_and_groups_the_rest() -> None:
    writes: list[list[int]] = []
    release = asyncio.Event()

    async def flush(items: list[int]) -> None:
        writes.append(items)
        if len(writes) == 1:
            await release.wait()  # the first write is slow: others gather meanwhile

    batcher = Batcher(flush, max_items=100, max_delay=3600, eager=True)
    first = asyncio.create_task(batcher.submit(0))
    for _ in range(3):
        await asyncio.sleep(0)
    assert writes == [[0]]  # not held for the (hour-long) delay
    rest = [asyncio.create_task(batcher.submit(n)) for n in range(1, 6)]
    for _ in range(3):
        await asyncio.sleep(0)
    assert writes == [[0]]  # a write is under way: they wait for it
    release.set()
    await asyncio.gather(first, *rest)
    assert writes == [[0], [1, 2, 3, 4, 5]]  # then go together, at once

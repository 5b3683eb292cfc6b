"""One suite, three buses: the in-process bus, RabbitMQ and the PostgreSQL bus of
``giftcloud up`` must behave alike."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from giftcloud_core.bus import (
    Bus,
    MemoryBus,
    PermanentFailure,
    PostgresBus,
    RabbitBus,
    Subscription,
)
from giftcloud_core.events import Event, InstancesReceived, ProjectCreated, ReceivedPart
from giftcloud_core.settings import BusSettings, DatabaseSettings
from support.infra import AMQP, create_database, db_url, delete_bus_topology, drop_database

pytestmark = pytest.mark.usefixtures("real_services")


async def eventually(check: Callable[[], Awaitable[bool] | bool], timeout: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@pytest.fixture(params=["memory", "rabbitmq", "postgres"])
async def bus_factory(
    request: pytest.FixtureRequest,
) -> AsyncIterator[Callable[[], Awaitable[Bus]]]:
    tag = uuid.uuid4().hex[:8]
    settings = BusSettings(
        kind=request.param,
        url=AMQP,
        exchange=f"gc-contract-{tag}",  # type: ignore[arg-type]
        namespace=f"gc-contract-{tag}.",
        max_retries=2,
        retry_base_seconds=0.05,
        prefetch=4,
    )
    made: list[Bus] = []
    database = await asyncio.to_thread(create_database) if request.param == "postgres" else ""

    async def make(**overrides: Any) -> Bus:
        chosen = settings.model_copy(update=overrides)
        bus: Bus
        if request.param == "memory":
            bus = MemoryBus(chosen)
        elif request.param == "postgres":
            bus = PostgresBus(chosen, DatabaseSettings(url=db_url(database)))
        else:
            bus = RabbitBus(chosen)
        await bus.start()
        made.append(bus)
        return bus

    yield make
    for bus in made:
        await bus.close()
    if request.param == "rabbitmq":
        await delete_bus_topology(settings.exchange, settings.namespace)
    if database:
        await asyncio.to_thread(drop_database, database)


def received(project: str = "p1", size: int = 1) -> InstancesReceived:
    part = ReceivedPart(name="p1/u/000000.dcm", sha256="0" * 64, size=size)
    return InstancesReceived(
        project=project, correlation_id="c1", object_key="k", parts=(part,), source="stow"
    )


async def test_an_event_reaches_its_consumer_once_and_whole(bus_factory: Any) -> None:
    bus = await bus_factory()
    seen: list[Event] = []

    async def handler(event: Event) -> None:
        seen.append(event)

    await bus.subscribe(Subscription("anonymise.instances", handler))
    sent = received()
    await bus.publish(sent)
    await bus.publish(ProjectCreated(project="p1", correlation_id="c1"))  # not bound to this queue
    await eventually(lambda: len(seen) >= 1)
    await asyncio.sleep(0.3)
    assert seen == [sent]


async def test_an_event_published_before_anyone_listens_waits(bus_factory: Any) -> None:
    bus = await bus_factory()
    sent = received()
    await bus.publish(sent)
    seen: list[Event] = []

    async def handler(event: Event) -> None:
        seen.append(event)

    await bus.subscribe(Subscription("anonymise.instances", handler))
    await eventually(lambda: seen == [sent])


async def test_depth_counts_what_waits_for_a_consumer(bus_factory: Any) -> None:
    bus = await bus_factory()
    assert await bus.depth("anonymise.instances") == 0
    for _ in range(3):
        await bus.publish(received())
    await bus.publish(ProjectCreated(project="p1", correlation_id="c1"))  # other queues'
    await eventually(lambda: _depth_is(bus, "anonymise.instances", 3))
    assert await bus.depth("archive.instances") == 0
    seen: list[Event] = []

    async def handler(event: Event) -> None:
        seen.append(event)

    await bus.subscribe(Subscription("anonymise.instances", handler))
    await eventually(lambda: len(seen) == 3)
    await eventually(lambda: _depth_is(bus, "anonymise.instances", 0))


async def _depth_is(bus: Bus, queue: str, n: int) -> bool:
    return await bus.depth(queue) == n


async def test_a_failing_handler_is_retried_until_it_succeeds(bus_factory: Any) -> None:
    bus = await bus_factory()
    attempts: list[int] = []

    async def flaky(event: Event) -> None:
        attempts.append(1)
        if len(attempts) < 3:
            raise RuntimeError("transient")

    await bus.subscribe(Subscription("anonymise.instances", flaky))
    await bus.publish(received())
    await eventually(lambda: len(attempts) == 3)
    await asyncio.sleep(0.5)
    assert len(attempts) == 3
    assert await bus.dead_letters("anonymise.instances") == 0


async def test_retries_are_bounded_then_dead_lettered(bus_factory: Any) -> None:
    bus = await bus_factory()
    attempts: list[int] = []

    async def broken(event: Event) -> None:
        attempts.append(1)
        raise RuntimeError("always")

    await bus.subscribe(Subscription("anonymise.instances", broken))
    await bus.publish(received())

    async def dead() -> bool:
        return await bus.dead_letters("anonymise.instances") == 1

    await eventually(dead)
    assert len(attempts) == 3  # the first try and max_retries=2 retries


async def test_permanent_failure_is_dead_lettered_at_once(bus_factory: Any) -> None:
    bus = await bus_factory()
    attempts: list[int] = []

    async def refuses(event: Event) -> None:
        attempts.append(1)
        raise PermanentFailure("no retry can mend this")

    await bus.subscribe(Subscription("anonymise.instances", refuses))
    await bus.publish(received())

    async def dead() -> bool:
        return await bus.dead_letters("anonymise.instances") == 1

    await eventually(dead)
    assert len(attempts) == 1


async def test_close_lets_the_handler_under_way_finish(bus_factory: Any) -> None:
    bus = await bus_factory()
    started, finished = asyncio.Event(), asyncio.Event()

    async def slow(event: Event) -> None:
        started.set()
        await asyncio.sleep(0.5)
        finished.set()

    await bus.subscribe(Subscription("anonymise.instances", slow))
    await bus.publish(received())
    await asyncio.wait_for(started.wait(), 20)
    await bus.close()
    assert finished.is_set()


async def test_handlers_hold_no_more_instance_bytes_than_the_budget(bus_factory: Any) -> None:
    bus = await bus_factory(memory_budget_bytes=100)
    under_way: list[int] = []
    seen: list[list[int]] = []  # what was under way each time a handler started

    async def handler(event: Event) -> None:
        under_way.append(event.payload_bytes())
        seen.append(list(under_way))
        await asyncio.sleep(0.05)
        under_way.remove(event.payload_bytes())

    await bus.subscribe(Subscription("anonymise.instances", handler))
    for size in (60, 60, 30, 10, 500, 10):  # prefetch is 4: without the budget 160 at once
        await bus.publish(received(size=size))
    await eventually(lambda: len(seen) == 6 and not under_way)
    for together in seen:
        if 500 in together:
            assert together == [500]  # larger than the whole budget: alone
        else:
            assert sum(together) <= 100
    assert max(len(together) for together in seen) >= 2  # small ones still ran together


async def test_the_postgres_bus_keeps_what_a_dead_process_held() -> None:
    """What ``giftcloud up`` promises: an event published before a stop is there after it,
    and one a killed process had taken comes back when its lease runs out."""
    database = await asyncio.to_thread(create_database)
    settings = BusSettings(kind="postgres", prefetch=4)
    where = DatabaseSettings(url=db_url(database))
    try:
        first = PostgresBus(settings, where, lease_seconds=1)
        await first.start()
        sent, taken = received(project="kept"), received(project="taken")
        await first.publish(sent)
        await first.publish(taken)
        leased = await first._lease(first._queue("anonymise.instances"), 1)
        assert len(leased) == 1
        await first.engine.dispose()  # killed: nothing settled, nothing released

        second = PostgresBus(settings, where, lease_seconds=1)
        await second.start()
        seen: list[Event] = []

        async def handler(event: Event) -> None:
            seen.append(event)

        await second.subscribe(Subscription("anonymise.instances", handler))
        try:
            await eventually(lambda: len(seen) == 2, timeout=20)
        finally:
            await second.close()
        assert {e.project for e in seen} == {"kept", "taken"}
    finally:
        await asyncio.to_thread(drop_database, database)

"""One runner for a process's background work (Orthanc runs its moves and peer stores on
one job engine): each job is a round run again and again, when woken or after its
interval, at once while it still has work. A round that fails is logged with the job's
name and tried again after the interval; no job's failure stops another. The runner's
``state()`` says when each job last ran and its last error (the operator's view)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

log = logging.getLogger(__name__)

#: a round: True while there is more work (run again at once), False/None to wait
Round = Callable[[bool], Awaitable[bool | None]]


@dataclass
class Job:
    name: str
    round: Round
    seconds: float
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    last_run: datetime | None = None
    last_error: str = ""


class Jobs:
    def __init__(self) -> None:
        self._jobs: list[Job] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._on_stop: list[Callable[[], Awaitable[None]]] = []

    def add(
        self,
        name: str,
        round: Round,
        *,
        seconds: float,
        wake: asyncio.Event | None = None,
        on_stop: Callable[[], Awaitable[None]] | None = None,
    ) -> Job:
        """``round(first)`` every ``seconds``, or as soon as ``wake`` is set; ``first`` is
        True for the round at the start. ``on_stop`` runs once the job has stopped."""
        job = Job(name, round, seconds, wake or asyncio.Event())
        self._jobs.append(job)
        if on_stop is not None:
            self._on_stop.append(on_stop)
        return job

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(job), name=job.name) for job in self._jobs]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for stop in self._on_stop:
            try:
                await stop()
            except Exception:
                log.exception("a job's stop failed")

    def state(self) -> dict[str, dict[str, str | None]]:
        return {
            job.name: {
                "last_run": job.last_run.isoformat() if job.last_run else None,
                "last_error": job.last_error or None,
            }
            for job in self._jobs
        }

    async def _run(self, job: Job) -> None:
        first = True
        while True:
            busy: bool | None = False
            job.wake.clear()  # a wake while the round runs runs it again
            try:
                busy = await job.round(first)
                job.last_error = ""
            except Exception as exc:
                log.exception("job %s failed; trying again in %.0f s", job.name, job.seconds)
                job.last_error = f"{type(exc).__name__}: {exc}"[:300]
            job.last_run = datetime.now(UTC)
            first = False
            if busy:
                await asyncio.sleep(0)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(job.wake.wait(), job.seconds)

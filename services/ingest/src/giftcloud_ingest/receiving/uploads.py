from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, replace

from giftcloud_core.budget import MemoryBudget
from giftcloud_core.metrics import INSTANCES
from giftcloud_core.tokens import Principal

from giftcloud_ingest.receiving.bundles import (
    BUNDLE_BYTES,
    BUNDLE_PARTS,
    Accepted,
    Bundles,
    split_into_bundles,
)
from giftcloud_ingest.receiving.checks import Admissions, Failed, Stored, StoreResult, not_stored
from giftcloud_ingest.receiving.records import UploadRecords, item_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Intake:
    """What an upload uses: the process's memory budget, the checks, the bundles, and the
    upload records."""

    budget: MemoryBudget
    admissions: Admissions
    bundles: Bundles
    records: UploadRecords


class UploadSession:
    """One upload as its files arrive (a STOW-RS body as it streams, an association):
    files are checked and stored in bundles as they fill, a few bundles at a time, so an
    upload of any size holds only a few bundles' worth of files in memory.

    Each accepted file is whole in ``incoming`` and announced, or reported failed; the
    upload's row says how many were accepted and refused.
    """

    def __init__(
        self,
        intake: Intake,
        project: str,
        caller: Principal,
        source: str,
        study_uid: str | None,
    ) -> None:
        self.intake = intake
        self.project = project
        self.caller = caller
        self.source = source
        self.study_uid = study_uid
        self.result = StoreResult(upload_id=uuid.uuid4().hex)
        self._files = 0
        self._bundles = 0
        self._pending: list[tuple[int, bytes]] = []
        self._pending_bytes = 0
        self._slots = asyncio.Semaphore(4)  # batches being checked and stored at once
        self._tasks: list[asyncio.Task[None]] = []
        self._outcomes: dict[int, Stored | Failed] = {}

    async def add(self, data: bytes) -> None:
        """One file of the upload; stored with its neighbours once a bundle's worth is here."""
        self._pending.append((self._next(), data))
        self._pending_bytes += len(data)
        if len(self._pending) >= BUNDLE_PARTS or self._pending_bytes >= BUNDLE_BYTES:
            await self._flush()

    def refuse(self, reason: int, message: str) -> None:
        """One file of the upload refused before it was read whole (too large, say)."""
        self._outcomes[self._next()] = Failed("", "", reason, message)

    async def finish(self) -> StoreResult:
        """Store what is still pending, wait for every batch, record the upload's counts."""
        try:
            await self._flush()
            await asyncio.gather(*self._tasks)
        finally:
            for index in sorted(self._outcomes):
                outcome = replace(self._outcomes[index], index=index)
                if isinstance(outcome, Failed):
                    self.result.failed.append(outcome)
                else:
                    self.result.stored.append(outcome)
            await self.intake.records.record_counts(self.project, self.result)
        return self.result

    def _next(self) -> int:
        self._files += 1
        return self._files - 1

    async def _flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending, self._pending_bytes = self._pending, [], 0
        await self._slots.acquire()  # back-pressure: the body is not read while all are busy
        holding = asyncio.Event()
        self._tasks.append(asyncio.create_task(self._store(batch, holding)))
        await holding.wait()  # and not while the process holds its budget of instances

    async def _store(self, batch: list[tuple[int, bytes]], holding: asyncio.Event) -> None:
        try:
            size = sum(len(data) for _, data in batch)
            async with self.intake.budget.hold(size):
                holding.set()
                await self._check_and_store(batch)
        finally:
            holding.set()
            self._slots.release()

    async def _check_and_store(self, batch: list[tuple[int, bytes]]) -> None:
        check = self.intake.admissions.check
        checked = await asyncio.to_thread(
            lambda: [check(data, self.project, self.study_uid) for _, data in batch]
        )
        await self._store_checked(batch, checked)

    async def add_checked(self, data: bytes, checked: Stored | Failed) -> Stored | Failed:
        """One file, checked by the caller, for a sender that waits for each answer (a DICOM
        association): answered only once the instance is whole in ``incoming`` and
        announced. It shares a bundle with what the project's other senders sent meanwhile
        (:class:`SharedBundles`)."""
        index = self._next()
        if isinstance(checked, Failed):
            INSTANCES.labels("ingest", "invalid").inc()
            self._outcomes[index] = checked
            return checked
        async with self.intake.budget.hold(len(data)):
            name = item_name(self.project, self.result.upload_id, index)
            ok = await self.intake.bundles.shared(self.project).store((name, data, checked))
        outcome: Stored | Failed = replace(checked, index=index) if ok else not_stored(checked)
        self._outcomes[index] = outcome
        return outcome

    async def _store_checked(
        self, batch: list[tuple[int, bytes]], checked: list[Stored | Failed]
    ) -> None:
        accepted: list[Accepted] = []
        names: dict[str, int] = {}
        for (index, data), outcome in zip(batch, checked, strict=True):
            if isinstance(outcome, Failed):
                INSTANCES.labels("ingest", "invalid").inc()
                self._outcomes[index] = outcome
            else:
                name = item_name(self.project, self.result.upload_id, index)
                names[name] = index
                accepted.append((name, data, outcome))
        for bundle in split_into_bundles(accepted):
            number, self._bundles = self._bundles, self._bundles + 1
            key = f"{self.project}/{self.result.upload_id}/{number:04d}.bundle"
            ok = await self.intake.bundles.store(
                self.project,
                self.result.upload_id,
                key,
                bundle,
                self.source,
                {self.result.upload_id: len(bundle)},
            )
            for name, _, info in bundle:
                self._outcomes[names[name]] = info if ok else not_stored(info)

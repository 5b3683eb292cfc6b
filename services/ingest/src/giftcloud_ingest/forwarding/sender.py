"""The sender: claims a batch of one project's due instances, reads them from the archive,
STOWs them to the hub with the machine credential, and settles each by the hub's answer
(stored: out of the outbox; out of resources: again later; refused: set aside with why)."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Any

import httpx
from giftcloud_core.clock import now
from giftcloud_core.metrics import FORWARD_BACKLOG, FORWARDED
from giftcloud_core.storage import ObjectStore
from giftcloud_dicom.multipart import related
from sqlalchemy import delete, func, update
from sqlmodel import col, select

from giftcloud_ingest.forwarding.hub import HubClient
from giftcloud_ingest.forwarding.service import Forwarding
from giftcloud_ingest.models import ForwardItem, ForwardProject

log = logging.getLogger(__name__)

#: a STOW-RS failure reason that means "try again later" (out of resources)
RETRY_REASONS = {0xA700}
#: how often the backlog gauge is counted afresh
MEASURE_SECONDS = 5.0


class Sender:
    def __init__(
        self, forwarding: Forwarding, hub: HubClient, store: ObjectStore, archive_bucket: str
    ) -> None:
        self.forwarding = forwarding
        self.settings = forwarding.settings
        self.db = forwarding.db
        self.hub = hub
        self.store = store
        self.archive = archive_bucket
        self._measured = 0.0
        self._busy = False

    async def round(self, first: bool) -> bool:
        """One batch forwarded (a job's round): True while there is more to do."""
        if not self.forwarding.configured:
            return False
        worked = await self.forward_once()
        drained, self._busy = self._busy and not worked, worked
        if drained or time.monotonic() - self._measured >= MEASURE_SECONDS:
            self._measured = time.monotonic()
            try:
                await self._measure()
            except Exception:
                log.exception("could not measure the forwarding backlog")
        return worked

    async def _measure(self) -> None:
        async with self.db.session() as session:
            rows = (
                await session.exec(
                    select(ForwardItem.project, ForwardItem.state, func.count()).group_by(
                        col(ForwardItem.project), col(ForwardItem.state)
                    )
                )
            ).all()
            projects = (await session.exec(select(ForwardProject.project))).all()
        for project in projects:
            for state in ("pending", "failed"):
                FORWARD_BACKLOG.labels(project, state).set(0)
        for project, state, count in rows:
            FORWARD_BACKLOG.labels(project, state).set(count)

    async def forward_once(self) -> bool:
        """Claim a batch of one project's due instances (skipping those another forwarder
        holds), send it, settle each. False when nothing was due."""
        at = now()
        lease = at + timedelta(seconds=self.settings.timeout_seconds * 2)
        async with self.db.session() as session:
            first = (
                await session.exec(
                    select(ForwardItem.project)
                    .join(ForwardProject, col(ForwardProject.project) == col(ForwardItem.project))
                    .where(
                        col(ForwardItem.state) == "pending",
                        col(ForwardItem.next_at) <= at,
                        col(ForwardProject.enabled).is_(True),
                    )
                    .order_by(col(ForwardItem.next_at))
                    .limit(1)
                )
            ).first()
            if first is None:
                return False
            items = list(
                (
                    await session.exec(
                        select(ForwardItem)
                        .where(
                            ForwardItem.project == first,
                            ForwardItem.state == "pending",
                            col(ForwardItem.next_at) <= at,
                        )
                        .order_by(col(ForwardItem.next_at))
                        .limit(self.settings.batch)
                        .with_for_update(skip_locked=True)
                    )
                ).all()
            )
            for item in items:
                item.next_at = lease
                session.add(item)
        if items:
            await self._send(str(first), items)
        return bool(items)

    async def _send(self, project: str, items: list[ForwardItem]) -> None:
        read = await asyncio.gather(
            *(self.store.get(self.archive, item.object_key) for item in items),
            return_exceptions=True,
        )
        files: list[bytes] = []
        sending: list[ForwardItem] = []
        for item, data in zip(items, read, strict=True):
            if isinstance(data, BaseException):
                await self._settle(project, [item], f"cannot read it from the archive: {data}")
            else:
                files.append(data)
                sending.append(item)
        if not sending:
            return
        try:
            body, content_type = related(files)
            response = await self.hub.request(
                "POST",
                f"/dicomweb/{project}/studies",
                content=body,
                headers={"Content-Type": content_type},
            )
        except Exception as exc:
            await self._settle(project, sending, f"the hub could not be reached: {exc}")
            return
        if response.status_code in (200, 202, 400, 409) and _is_stow(response):
            await self._settle_answer(project, sending, response.json())
        else:
            detail = response.text[:300].replace("\n", " ")
            await self._settle(
                project, sending, f"the hub answered {response.status_code}: {detail}"
            )

    async def _settle_answer(
        self, project: str, items: list[ForwardItem], answer: dict[str, Any]
    ) -> None:
        failures: dict[str, tuple[int, str]] = {}
        for entry in answer.get("00081198", {}).get("Value", []):
            sop = _first(entry.get("00081155"))
            reason = _first(entry.get("00081197"))
            why = _first(entry.get("00091001")) or _first(entry.get("00000902"))
            failures[str(sop)] = (int(reason or 0), str(why))
        done = [i for i in items if i.sop_uid not in failures]
        retry = [i for i in items if failures.get(i.sop_uid, (0, ""))[0] in RETRY_REASONS]
        refused = [
            i
            for i in items
            if i.sop_uid in failures and failures[i.sop_uid][0] not in RETRY_REASONS
        ]
        if done:
            async with self.db.session() as session:
                await session.exec(
                    delete(ForwardItem).where(
                        col(ForwardItem.project) == project,
                        col(ForwardItem.sop_uid).in_([i.sop_uid for i in done]),
                    )
                )
                await session.exec(
                    update(ForwardProject)
                    .where(col(ForwardProject.project) == project)
                    .values(last_success_at=now())
                )
            FORWARDED.labels("stored").inc(len(done))
        for item in refused:
            code, why = failures[item.sop_uid]
            await self._settle(
                project, [item], f"the hub refused it (0x{code:04X}): {why}", final=True
            )
        if retry:
            await self._settle(project, retry, "the hub is out of resources; trying again")

    async def _settle(
        self, project: str, items: list[ForwardItem], error: str, final: bool = False
    ) -> None:
        """A failed try: back off, or set aside (refused, or out of tries)."""
        log.warning("forwarding %d instance(s) of %s: %s", len(items), project, error)
        async with self.db.session() as session:
            for item in items:
                attempts = item.attempts + 1
                give_up = final or attempts >= self.settings.max_attempts
                delay = self.settings.backoff(item.attempts)
                await session.exec(
                    update(ForwardItem)
                    .where(
                        col(ForwardItem.project) == project,
                        col(ForwardItem.sop_uid) == item.sop_uid,
                    )
                    .values(
                        attempts=attempts,
                        state="failed" if give_up else "pending",
                        next_at=now() + timedelta(seconds=delay),
                        last_error=error[:500],
                    )
                )
            await session.exec(
                update(ForwardProject)
                .where(col(ForwardProject.project) == project)
                .values(last_error=error[:500], last_error_at=now())
            )
        FORWARDED.labels("failed" if final else "retried").inc(len(items))


def _is_stow(response: httpx.Response) -> bool:
    return str(response.headers.get("content-type", "")).startswith("application/dicom+json")


def _first(element: Any) -> Any:
    if not isinstance(element, dict):
        return None
    values = element.get("Value") or [None]
    return values[0]

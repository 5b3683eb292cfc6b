"""Delivering approved results to the hospital: each by C-STORE to the node the
reidentifier chose (one of the site's remote nodes), its answer recorded; a refusal or an
unreachable node is tried again with back-off, then set aside as failed with the reason.
Every delivery is in the audit trail. A result is sent again only when its outcome was not
recorded (a crash mid-send): its UIDs are the same each time, so the PACS keeps one."""

from __future__ import annotations

import logging
from datetime import timedelta

from giftcloud_core.access import Auditor
from giftcloud_core.clock import now
from giftcloud_core.settings import ForwardSettings
from sqlalchemy import update
from sqlmodel import col, select

from giftcloud_ingest.models import RemoteNode, ReturnItem
from giftcloud_ingest.retrieval.scu import STORED, RemoteError, Scu, store_status_text
from giftcloud_ingest.returns.service import Returns

log = logging.getLogger(__name__)


class Deliverer:
    def __init__(
        self, returns: Returns, scu: Scu, settings: ForwardSettings, audit: Auditor
    ) -> None:
        self.returns = returns
        self.db = returns.db
        self.scu = scu
        self.settings = settings
        self.audit = audit

    async def round(self, first: bool) -> bool:
        """Deliver one approved result that is due (a job's round): True while there may be
        more."""
        lease = now() + timedelta(minutes=10)
        async with self.db.session() as session:
            item = (
                await session.exec(
                    select(ReturnItem)
                    .where(col(ReturnItem.state) == "approved", col(ReturnItem.next_at) <= now())
                    .order_by(col(ReturnItem.next_at))
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
            ).first()
            if item is None:
                return False
            item.next_at = lease  # another deliverer leaves it alone meanwhile
            session.add(item)
            node = await session.get(RemoteNode, item.destination)
        await self.deliver(item, node)
        return True

    async def deliver(self, item: ReturnItem, node: RemoteNode | None) -> None:
        if node is None:
            await self._failed(item, f"node {item.destination!r} was removed", final=True)
            return
        try:
            files = [await self.returns.content(item)]
            renderings = await self.returns.rendering(item) if node.renderings else []
            async with self.scu.bound(node):
                answers = await self.scu.store(node, files + renderings)
        except Exception as exc:  # unreachable, refused association, a copy gone: say so
            known = isinstance(exc, RemoteError | OSError | ValueError)
            await self._failed(item, str(exc) if known else f"{type(exc).__name__}: {exc}")
            return
        for n, answer in enumerate(answers):
            code = int(answer.Status) if answer is not None and "Status" in answer else None
            if code not in STORED:
                what = "the result" if n == 0 else f"rendering {n} of {len(renderings)}"
                said = store_status_text(answer)
                await self._failed(item, f"{node.name} answered for {what}: {said}")
                return
        said = store_status_text(answers[0])
        if renderings:
            said += f"; with {len(renderings)} rendering(s) as secondary captures"
        elif node.renderings:
            said += "; no rendering" + (f" ({item.reason})" if item.reason else " was made")
        async with self.db.session() as session:
            await session.exec(
                update(ReturnItem)
                .where(col(ReturnItem.project) == item.project, col(ReturnItem.key) == item.key)
                .values(state="delivered", status=said, delivered_at=now(), reason="")
            )
        await self.audit.record(
            None,
            "ingest.result.deliver",
            project=item.project,
            target=f"result {item.key}",
            detail=f"to {node.name} ({node.ae_title} at {node.host}:{node.port}): {said}",
            actor=item.decided_by,
            required=False,
        )

    async def _failed(self, item: ReturnItem, why: str, final: bool = False) -> None:
        attempts = item.attempts + 1
        give_up = final or attempts >= self.settings.max_attempts
        delay = self.settings.backoff(item.attempts)
        log.warning("delivering result %s of %s: %s", item.key, item.project, why)
        async with self.db.session() as session:
            await session.exec(
                update(ReturnItem)
                .where(col(ReturnItem.project) == item.project, col(ReturnItem.key) == item.key)
                .values(
                    attempts=attempts,
                    state="failed" if give_up else "approved",
                    next_at=now() + timedelta(seconds=delay),
                    status=why[:2000],
                )
            )
        if give_up:
            await self.audit.record(
                None,
                "ingest.result.deliver",
                project=item.project,
                target=f"result {item.key}",
                outcome="failure",
                detail=f"to {item.destination}: {why}"[:2000],
                actor=item.decided_by,
                required=False,
            )

"""The inbox of results pulled back from the hub: which projects pull, what arrived and where
each stands, and the reidentifier's decision. anonymise answers for each arrival (ready,
held, refused); a ready result waits for a person with the reidentifier role, and only an
approved one is delivered (:mod:`giftcloud_ingest.returns.delivery`)."""

from __future__ import annotations

import asyncio
from typing import Any

from giftcloud_core.bundle import unpack
from giftcloud_core.clock import now
from giftcloud_core.db import Database
from giftcloud_core.errors import Conflict, NotFound
from giftcloud_core.events import Event, ResultPrepared
from giftcloud_core.settings import Buckets
from giftcloud_core.storage import ObjectStore
from sqlalchemy import func, update
from sqlmodel import col, select

from giftcloud_ingest.forwarding.hub import HubClient, link_state, switch
from giftcloud_ingest.models import RemoteNode, ReturnItem, ReturnProject

#: the states an arrival ends its check in, by anonymise's outcome
CHECKED = {"ready": "waiting", "held": "held", "refused": "refused"}
#: what a reidentifier may still decide on
UNDECIDED = ("waiting",)
STATES = ("checking", "waiting", "held", "refused", "approved", "delivered", "failed", "declined")


class Returns:
    def __init__(self, db: Database, hub: HubClient, store: ObjectStore, buckets: Buckets) -> None:
        self.db = db
        self.hub = hub
        self.store = store
        self.buckets = buckets
        #: set when a result is approved (or retried): the deliverer starts at once
        self.wake = asyncio.Event()

    async def set_enabled(self, project: str, enabled: bool, by: str) -> dict[str, Any]:
        if enabled:
            self.hub.require("pull results from")
        await switch(self.db, ReturnProject, project, enabled, by)
        return await self.status(project)

    async def status(self, project: str) -> dict[str, Any]:
        async with self.db.session() as session:
            row = await session.get(ReturnProject, project)
            counts = dict(
                (
                    await session.exec(
                        select(ReturnItem.state, func.count())
                        .where(ReturnItem.project == project)
                        .group_by(col(ReturnItem.state))
                    )
                ).all()
            )
        return {
            "project": project,
            "hub": self.hub.url or None,
            "states": {str(k): int(v) for k, v in counts.items()},
            **link_state(row),
        }

    async def items(self, project: str, state: str | None) -> list[ReturnItem]:
        query = select(ReturnItem).where(ReturnItem.project == project)
        if state:
            query = query.where(ReturnItem.state == state)
        async with self.db.session() as session:
            return list(
                (await session.exec(query.order_by(col(ReturnItem.created_at)).limit(1000))).all()
            )

    async def destinations(self) -> list[RemoteNode]:
        async with self.db.session() as session:
            return list(
                (await session.exec(select(RemoteNode).order_by(col(RemoteNode.name)))).all()
            )

    async def one(self, project: str, key: str) -> ReturnItem:
        async with self.db.session() as session:
            row = await session.get(ReturnItem, (project, key))
        if row is None:
            raise NotFound(f"no result {key!r} in project {project!r}")
        return row

    async def on_prepared(self, event: Event) -> None:
        """anonymise's answer: the result waits for a reidentifier, is held, or is refused
        (and was not kept). Only a result still being checked moves (a redelivery is a
        no-op)."""
        if not isinstance(event, ResultPrepared):
            return
        async with self.db.session() as session:
            await session.exec(
                update(ReturnItem)
                .where(
                    col(ReturnItem.project) == event.project,
                    col(ReturnItem.key) == event.key,
                    col(ReturnItem.state) == "checking",
                )
                .values(
                    state=CHECKED[event.outcome],
                    reason=event.reason[:2000],
                    prepared_key=event.prepared_key,
                    rendering_key=event.rendering_key,
                )
            )

    async def decide(
        self, project: str, key: str, by: str, destination: str | None, reason: str = ""
    ) -> ReturnItem:
        """Approve a waiting result for delivery to ``destination`` (a remote node; files
        need none: they are handed over by download), or decline it (``destination`` None).
        409 when it is not waiting for a decision."""
        item = await self.one(project, key)
        if item.state not in UNDECIDED:
            raise Conflict(
                f"result {key!r} is {item.state}"
                + (f" ({item.reason})" if item.reason else "")
                + ": only a result waiting for a reidentifier can be approved or declined"
            )
        values: dict[str, Any] = {"decided_by": by, "decided_at": now()}
        if destination is None:
            values |= {"state": "declined", "reason": reason or "declined"}
        elif item.kind == "file":
            values |= {"state": "delivered", "delivered_at": now(), "status": "released"}
        else:
            async with self.db.session() as session:
                if await session.get(RemoteNode, destination) is None:
                    raise NotFound(
                        f"no node {destination!r}: an admin adds the hospital's nodes"
                        " (PUT /ingest/nodes/{name})"
                    )
            values |= {"state": "approved", "destination": destination, "next_at": now()}
        async with self.db.session() as session:
            changed = await session.exec(
                update(ReturnItem)
                .where(
                    col(ReturnItem.project) == project,
                    col(ReturnItem.key) == key,
                    col(ReturnItem.state).in_(UNDECIDED),
                )
                .values(**values)
            )
            if changed.rowcount == 0:  # another reidentifier decided first
                raise Conflict(f"result {key!r} was decided on by someone else just now")
        if destination is None:
            await self._forget(item)
        else:
            self.wake.set()
        return await self.one(project, key)

    async def retry(self, project: str, key: str) -> ReturnItem:
        """A failed delivery, tried again from now."""
        async with self.db.session() as session:
            changed = await session.exec(
                update(ReturnItem)
                .where(
                    col(ReturnItem.project) == project,
                    col(ReturnItem.key) == key,
                    col(ReturnItem.state) == "failed",
                )
                .values(state="approved", attempts=0, next_at=now())
            )
        if changed.rowcount == 0:
            item = await self.one(project, key)
            raise Conflict(f"result {key!r} is {item.state}: only a failed delivery is retried")
        self.wake.set()
        return await self.one(project, key)

    async def content(self, item: ReturnItem) -> bytes:
        """What would be (or was) delivered: the re-identified copy (a file as it came)."""
        if not item.prepared_key:
            raise Conflict(f"result {item.key!r} has no re-identified copy ({item.state})")
        return await self.store.get(self.buckets.incoming, item.prepared_key)

    async def rendering(self, item: ReturnItem) -> list[bytes]:
        """A segmentation's rendering as secondary captures ([] when none was made)."""
        if not item.rendering_key:
            return []
        return unpack(await self.store.get(self.buckets.incoming, item.rendering_key))

    async def _forget(self, item: ReturnItem) -> None:
        for key in {item.object_key, item.prepared_key, item.rendering_key} - {""}:
            await self.store.delete(self.buckets.incoming, key)

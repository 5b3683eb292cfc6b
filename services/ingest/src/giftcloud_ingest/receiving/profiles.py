"""Each project's de-identification choices (options, burned-in attestations), as anonymise
announces them, kept so that ingest admits a file by the profile anonymise will apply. Every
replica reads the table every few seconds; the one that takes the event at once."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from giftcloud_core.db import Database
from giftcloud_core.events import Event, ProfileChanged
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import select

from giftcloud_ingest.models import ChosenProfile

#: how often a replica looks for choices another replica received
REFRESH_SECONDS = 5.0


class ChosenProfiles:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._chosen: dict[str, tuple[int, dict[str, Any]]] = {}
        self._listeners: list[Callable[[], None]] = []

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def of(self, project: str) -> dict[str, Any] | None:
        """What the project's owners chose (None: nothing, the file or default decides)."""
        found = self._chosen.get(project)
        return found[1] if found else None

    async def on_event(self, event: Event) -> None:
        if not isinstance(event, ProfileChanged):
            return
        statement = insert(ChosenProfile).values(
            project=event.project, version=event.version, choices=json.dumps(event.choices())
        )
        statement = statement.on_conflict_do_update(
            index_elements=["project"],
            set_={"version": event.version, "choices": statement.excluded.choices},
            where=ChosenProfile.version < event.version,  # type: ignore[arg-type]
        )
        async with self.db.session() as session:
            await session.exec(statement)
        await self.refresh()

    async def refresh(self, first: bool = False) -> None:
        """Read every project's choices; the admissions forget what changed."""
        async with self.db.session() as session:
            rows = (await session.exec(select(ChosenProfile))).all()
        latest = {row.project: (row.version, json.loads(row.choices)) for row in rows}
        if {p: v for p, (v, _) in latest.items()} != {p: v for p, (v, _) in self._chosen.items()}:
            self._chosen = latest
            for listener in self._listeners:
                listener()

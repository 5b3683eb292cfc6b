"""Each project's de-identification choices (options, burned-in attestations), as anonymise
announces them, kept so that ingest admits a file by the profile anonymise will apply. Every
replica reads the table every few seconds; the one that takes the event at once."""

from __future__ import annotations

import json
from typing import Any

from giftcloud_core.db import Database
from giftcloud_core.events import Event, ProfileChanged
from giftcloud_core.versioned import Versioned
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import select

from giftcloud_ingest.models import ChosenProfile

#: how often a replica looks for choices another replica received
REFRESH_SECONDS = 5.0


class ChosenProfiles:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._chosen: Versioned[tuple[int, dict[str, Any]]] = Versioned(self._read, lambda r: r[0])
        self.on_change = self._chosen.on_change
        self.refresh = self._chosen.refresh

    def of(self, project: str) -> dict[str, Any] | None:
        """What the project's owners chose (None: nothing, the file or default decides)."""
        found = self._chosen.rows.get(project)
        return found[1] if found else None

    async def _read(self) -> dict[str, tuple[int, dict[str, Any]]]:
        async with self.db.session() as session:
            rows = (await session.exec(select(ChosenProfile))).all()
        return {row.project: (row.version, json.loads(row.choices)) for row in rows}

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

"""Each project's de-identification profile: the server's file (or the default) with what
the project's owners chose over it — options, and the kinds of image they attest carry no
burned-in text (who and when kept). A choice is announced (``profile.changed.v1``) so that
ingest admits files by the same profile; every replica re-reads the table every few
seconds, the one that took the choice at once."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from giftcloud_core.bus import Bus
from giftcloud_core.clock import now
from giftcloud_core.db import Database
from giftcloud_core.errors import BadRequest
from giftcloud_core.events import ProfileChanged
from giftcloud_core.logs import correlation_id
from giftcloud_core.versioned import Versioned
from giftcloud_deid import Option, Profile, ProfileError
from giftcloud_deid.profile import ATTESTABLE, project_profile
from giftcloud_deid.rules import OPTION_CODES
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import select

from giftcloud_anonymise.models import ProjectProfile
from giftcloud_anonymise.profiles.schemas import (
    EXPLAINED,
    Attestation,
    OptionState,
    ProfileChoice,
    ProfileState,
)

#: how often a replica looks for choices another replica took
REFRESH_SECONDS = 5.0


def _choices(row: ProjectProfile) -> dict[str, Any]:
    chosen: dict[str, Any] = {"burned_in_attested": sorted(json.loads(row.attested))}
    if row.options is not None:
        chosen["options"] = json.loads(row.options)
    return chosen


class ProjectProfiles:
    def __init__(self, folder: Path | None, db: Database, bus: Bus) -> None:
        self.folder = folder
        self.db = db
        self.bus = bus
        self._versioned: Versioned[ProjectProfile] = Versioned(self._read, lambda r: r.version)
        self.on_change = self._versioned.on_change
        self.refresh = self._versioned.refresh
        self.version = self._versioned.version

    @property
    def _rows(self) -> dict[str, ProjectProfile]:
        return self._versioned.rows

    async def _read(self) -> dict[str, ProjectProfile]:
        async with self.db.session() as session:
            return {row.project: row for row in (await session.exec(select(ProjectProfile))).all()}

    def profile(self, project: str) -> Profile:
        """The profile the engine applies to ``project`` now."""
        row = self._rows.get(project)
        return project_profile(self.folder, project, _choices(row) if row else None)

    async def announce(self) -> None:
        """Every project's choices, for an ingest that missed them (at start)."""
        await self.refresh()
        for row in self._rows.values():
            await self.bus.publish(self._event(row))

    def state(self, project: str) -> ProfileState:
        row = self._rows.get(project)
        profile = self.profile(project)
        file = self.folder is not None and (self.folder / f"{project}.yaml").is_file()
        source = "owners" if row and row.options is not None else "file" if file else "default"
        attested: dict[str, dict[str, str]] = json.loads(row.attested) if row else {}
        return ProfileState(
            project=project,
            source=source,
            version=row.version if row else 0,
            description=profile.description,
            options=[
                OptionState(
                    name=option.value,
                    code=OPTION_CODES[option][0],
                    meaning=OPTION_CODES[option][1],
                    explanation=EXPLAINED.get(option.value, ""),
                    on=option in profile.options,
                )
                for option in Option
            ],
            burned_in=[
                Attestation(
                    kind=kind,
                    label=label,
                    attested=kind in profile.attested,
                    by=attested.get(kind, {}).get("by", ""),
                    at=datetime.fromisoformat(attested[kind]["at"]) if kind in attested else None,
                )
                for kind, label in ATTESTABLE.items()
            ],
        )

    async def choose(
        self, project: str, by: str, choice: ProfileChoice
    ) -> tuple[ProfileState, str]:
        """Record an owner's choice; the new state and what changed, in words (for the audit)."""
        await self.refresh()
        kinds = sorted({k.upper() for k in choice.burned_in_attested})
        wanted: dict[str, Any] = {"burned_in_attested": kinds}
        if choice.options is not None:
            wanted["options"] = sorted(set(choice.options))
        try:
            project_profile(self.folder, project, wanted)
        except ProfileError as exc:
            raise BadRequest(str(exc)) from exc
        before = self.state(project)
        row = self._rows.get(project)
        old: dict[str, dict[str, str]] = json.loads(row.attested) if row else {}
        at = now().isoformat()
        attested = {k: old.get(k) or {"by": by, "at": at} for k in kinds}
        async with self.db.session() as session:
            first = insert(ProjectProfile).values(project=project, version=0, updated_at=now())
            await session.exec(first.on_conflict_do_nothing())
            stored = await session.get(ProjectProfile, project, with_for_update=True)
            assert stored is not None  # inserted above if it was not there
            stored.version += 1
            stored.options = json.dumps(wanted["options"]) if "options" in wanted else None
            stored.attested = json.dumps(attested)
            stored.updated_by, stored.updated_at = by, now()
            session.add(stored)
            event = self._event(stored)
        await self.bus.publish(event)
        await self.refresh()
        after = self.state(project)
        return after, _changes(before, after)

    def _event(self, row: ProjectProfile) -> ProfileChanged:
        chosen = _choices(row)
        options = chosen.get("options")
        return ProfileChanged(
            correlation_id=correlation_id.get() or f"profile:{row.project}",
            project=row.project,
            version=row.version,
            options=tuple(options) if options is not None else None,
            burned_in_attested=tuple(chosen["burned_in_attested"]),
        )


def _changes(before: ProfileState, after: ProfileState) -> str:
    """What a choice changed, e.g. ``clean_descriptors off; attested US``."""
    words = [
        f"{o.name} {'on' if o.on else 'off'}"
        for o, p in zip(after.options, before.options, strict=True)
        if o.on != p.on
    ]
    words += [
        f"{'attested' if a.attested else 'withdrew'} {a.kind}: no burned-in text"
        for a, p in zip(after.burned_in, before.burned_in, strict=True)
        if a.attested != p.attested
    ]
    return "; ".join(words) or "no change"

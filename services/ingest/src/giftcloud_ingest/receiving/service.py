"""The receiving core: every way in (STOW-RS, the DICOM node, a retrieval's moves) checks
a file and hands it to an upload here; the upload stores it in bundles and records it."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from giftcloud_core.budget import MemoryBudget
from giftcloud_core.bus import Bus
from giftcloud_core.db import Database
from giftcloud_core.events import (
    Event,
    ProjectCreated,
    ProjectUpdated,
)
from giftcloud_core.settings import Settings
from giftcloud_core.storage import ObjectStore
from giftcloud_core.tokens import Principal
from sqlalchemy.dialects.postgresql import insert

from giftcloud_ingest.models import KnownProject
from giftcloud_ingest.receiving.bundles import Bundles
from giftcloud_ingest.receiving.checks import Admissions, Failed, Stored, StoreResult
from giftcloud_ingest.receiving.profiles import ChosenProfiles
from giftcloud_ingest.receiving.records import UploadRecords
from giftcloud_ingest.receiving.uploads import Intake, UploadSession

log = logging.getLogger(__name__)


def split_list(text: str) -> list[str]:
    """A comma-separated column (networks) as its items."""
    return [item for item in text.split(",") if item]


class Receiver:
    def __init__(self, settings: Settings, db: Database, bus: Bus, store: ObjectStore) -> None:
        self.settings = settings
        self.db = db
        self.bundles = Bundles(settings, db, bus, store)
        self.records = UploadRecords(db)
        self.profiles = ChosenProfiles(db)
        self.admissions = Admissions(settings, self.profiles)
        #: bytes of received instances this process checks and stores at once, whatever the
        #: number of uploads (one batch larger than the budget goes alone)
        self.intake = Intake(
            MemoryBudget(settings.bus.memory_budget_bytes),
            self.admissions,
            self.bundles,
            self.records,
        )

    def check(self, data: bytes, project: str, study_uid: str | None = None) -> Stored | Failed:
        """A file as it arrives for ``project``: what it is, or why it is refused."""
        return self.admissions.check(data, project, study_uid)

    async def networks_of(self, project: str) -> list[str] | None:
        """The networks a project's data may be reached from ([] anywhere), None for a
        project this ingest does not know."""
        async with self.db.session() as session:
            known = await session.get(KnownProject, project)
        return None if known is None else split_list(known.networks)

    async def open_upload(
        self,
        project: str,
        caller: Principal,
        *,
        source: str = "stow",
        study_uid: str | None = None,
        sender: str = "",
    ) -> UploadSession:
        """A new upload, recorded before its first file is announced (so its status exists
        for every outcome); :meth:`UploadSession.finish` records its counts. ``source`` is
        the way in (as events name it); ``sender``, when given, is what the upload's status
        shows as its source (a DICOM association's calling AE title and address)."""
        session = UploadSession(self.intake, project, caller, source, study_uid)
        await self.records.open(session.result.upload_id, project, caller, sender or source)
        return session

    async def receive(
        self,
        project: str,
        caller: Principal,
        files: list[bytes],
        *,
        source: str = "stow",
        study_uid: str | None = None,
    ) -> StoreResult:
        """Accept each file that is a whole DICOM instance: encrypted into ``incoming`` (in
        bundles), then announced. A file is accepted only once both have happened."""
        upload = await self.open_upload(project, caller, source=source, study_uid=study_uid)
        for data in files:
            await upload.add(data)
        return await upload.finish()

    async def on_project_event(self, event: Event) -> None:
        if isinstance(event, ProjectCreated):
            async with self.db.session() as session:
                await session.exec(
                    insert(KnownProject).values(name=event.project).on_conflict_do_nothing()
                )
        elif isinstance(event, ProjectUpdated):
            networks = ",".join(event.networks)
            statement = insert(KnownProject).values(name=event.project, networks=networks)
            async with self.db.session() as session:
                await session.exec(
                    statement.on_conflict_do_update(
                        index_elements=["name"], set_={"networks": networks}
                    )
                )

    async def sweep(self, first: bool) -> None:
        """One round of the sweep: bundles stored but never announced, uploads cut off. The
        first round of the sole ingest takes everything before it (nothing else can be
        under way); later rounds what is older than ``orphan_seconds``."""
        config = self.settings.ingest
        now = datetime.now(UTC)
        sole = first and config.sole_instance
        await self.bundles.sweep_orphans(0 if sole else config.orphan_seconds)
        await self.records.interrupt_abandoned(
            now if sole else now - timedelta(seconds=config.orphan_seconds)
        )

"""The catalogue: projects, subjects, studies, series and instances as archive announced
them, each instance's DICOM JSON with it; who may read a project."""

from __future__ import annotations

import logging
from typing import Any

from giftcloud_core.access import authorize
from giftcloud_core.batching import Batcher
from giftcloud_core.bus import Bus
from giftcloud_core.db import Database
from giftcloud_core.errors import GiftcloudError, NotFound
from giftcloud_core.events import (
    CataloguedInstance,
    Event,
    InstanceRejected,
    InstancesArchived,
    InstancesCatalogued,
    ProjectCreated,
    ProjectUpdated,
    QuarantineCleared,
)
from giftcloud_core.settings import Settings
from giftcloud_core.storage import ObjectStore
from giftcloud_core.tokens import READ_ROLES, Principal
from sqlalchemy.exc import DBAPIError

from giftcloud_api.catalogue import consistency, derived, reads, writes
from giftcloud_api.catalogue.downloads import Entry
from giftcloud_api.models import Instance, Project, Study

log = logging.getLogger(__name__)


def _networks(project: Project) -> list[str]:
    """The networks a project's data may be reached from ([]: anywhere)."""
    return [n for n in project.networks.split(",") if n]


class CatalogueService:
    def __init__(
        self, settings: Settings, db: Database, store: ObjectStore, bus: Bus | None = None
    ) -> None:
        self.settings = settings
        self.db = db
        self.store = store
        #: where what the catalogue recorded (or could not) is told; None: told to no one
        self.bus = bus
        self.archive = settings.storage.buckets.archive
        self._archived: Batcher[InstancesArchived] = Batcher(self._add_instances)
        self.results = derived.Results(db, store, self.archive, bus, derived.grace(settings.bus))

    async def on_event(self, event: Event) -> None:
        if isinstance(event, InstancesArchived):
            event, results = await self.results.screen(event)  # results: their sources held
            if event.instances:
                await self._archived.submit(event)  # written with its neighbours, then acked
            await self.results.link(event.project, results)
        elif isinstance(event, InstanceRejected):
            async with self.db.session() as session:
                await writes.add_quarantined(session, event)
        elif isinstance(event, QuarantineCleared):
            async with self.db.session() as session:
                await writes.clear_quarantined(session, event)
        elif isinstance(event, ProjectCreated):
            async with self.db.session() as session:
                await writes.add_project(session, event.project, event.title)
        elif isinstance(event, ProjectUpdated):
            async with self.db.session() as session:
                await writes.update_project(
                    session, event.project, event.title, ",".join(event.networks)
                )

    async def _add_instances(self, events: list[InstancesArchived]) -> None:
        """Record a batch of archived instances; should the batch fail on what an instance
        holds, each instance alone, so one bad instance never takes its neighbours with it
        (it is rejected with the reason). Then say which are found now."""
        try:
            async with self.db.session() as session:
                disagreeing = await writes.add_instances(session, events)
            recorded = events
        except DBAPIError as exc:
            if not _bad_data(exc):
                raise  # the database, not the data: the batch is tried again
            disagreeing, recorded = await self._add_one_by_one(events)
        await self._settle(disagreeing)
        if self.bus is None:
            return
        for event in recorded:
            await self.bus.publish(
                InstancesCatalogued(
                    project=event.project,
                    correlation_id=event.correlation_id,
                    instances=tuple(
                        CataloguedInstance(
                            received_key=i.received_key,
                            study_uid=i.study_uid,
                            series_uid=i.series_uid,
                            sop_uid=i.sop_uid,
                            already=i.already,
                        )
                        for i in event.instances
                    ),
                )
            )

    async def _add_one_by_one(
        self, events: list[InstancesArchived]
    ) -> tuple[list[dict[str, Any]], list[InstancesArchived]]:
        disagreeing: list[dict[str, Any]] = []
        recorded = []
        for event in events:
            kept = []
            for instance in event.instances:
                alone = event.model_copy(update={"instances": (instance,)})
                try:
                    async with self.db.session() as session:
                        disagreeing += await writes.add_instances(session, [alone])
                except DBAPIError as exc:
                    if not _bad_data(exc):
                        raise
                    await self._refuse(event, instance.received_key or instance.sop_uid, exc)
                    continue
                kept.append(instance)
            recorded.append(event.model_copy(update={"instances": tuple(kept)}))
        return disagreeing, recorded

    async def _refuse(self, event: InstancesArchived, key: str, exc: Exception) -> None:
        cause = str(getattr(exc, "orig", exc)).splitlines()[0][:200]
        log.error("the catalogue could not record %s: %s", key, cause)
        if self.bus is not None:
            await self.bus.publish(
                InstanceRejected(
                    project=event.project,
                    correlation_id=event.correlation_id,
                    object_key=key,
                    reason=f"archived, but the catalogue could not record it: {cause}",
                )
            )

    async def _settle(self, disagreeing: list[dict[str, Any]]) -> None:
        await consistency.settle(self.db, self.store, self.archive, disagreeing)

    async def repair(self, project: str | None = None, *, fix: bool = True) -> dict[str, int]:
        """Rows that describe another copy than the archive holds, found (and fixed)."""
        limit = self.settings.limits.inflated_ceiling
        return await consistency.repair(self.db, self.store, self.archive, limit, project, fix=fix)

    async def check(
        self,
        project: str,
        caller: Principal,
        address: str,
        roles: frozenset[str] = READ_ROLES,
    ) -> str:
        """404 for an unknown project, 403 unless the caller may read it from where they are
        (its role, the project's networks, the credential's networks); the caller's role."""
        async with self.db.session() as session:
            found = await session.get(Project, project)
        if found is None:
            raise NotFound(f"no project {project!r}")
        return authorize(caller, project, roles, networks=_networks(found), address=address)

    async def readable(self, caller: Principal, address: str) -> list[str]:
        """The projects the caller may read from ``address`` (role and networks, as
        :meth:`check` judges one), from one read of the projects."""
        names = []
        for found in await self.projects(caller):
            try:
                authorize(
                    caller, found.name, READ_ROLES, networks=_networks(found), address=address
                )
            except GiftcloudError:
                continue
            names.append(found.name)
        return names

    async def projects(self, caller: Principal) -> list[Project]:
        async with self.db.session() as session:
            rows = await reads.projects(session)
        return [p for p in rows if caller.role_on(p.name) is not None]

    async def studies_of(self, project: str, subject: str) -> list[Study]:
        async with self.db.session() as session:
            return await reads.studies_of(session, project, subject)

    async def entries(
        self,
        project: str,
        subject: str | None = None,
        study_uid: str | None = None,
        series_uid: str | None = None,
    ) -> list[Entry]:
        async with self.db.session() as session:
            return await reads.entries(session, project, subject, study_uid, series_uid)

    async def zip_entries(
        self,
        project: str,
        subject: str | None = None,
        study_uid: str | None = None,
        series_uid: str | None = None,
    ) -> list[Entry]:
        """What a zip of the selection holds: its instances, then the files attached."""
        found = await self.entries(project, subject, study_uid, series_uid)
        async with self.db.session() as session:
            attached = await reads.file_entries(session, project, subject, study_uid, series_uid)
        return found + attached

    async def metadata_json(
        self,
        project: str,
        study_uid: str,
        series_uid: str | None = None,
        sop_uid: str | None = None,
    ) -> tuple[bytes, int] | None:
        """The DICOM JSON array of the instances (of a study, a series or one), as text,
        with every BulkDataURI made absolute on the public URL, and how many; None when
        there are none."""
        async with self.db.session() as session:
            found = await reads.metadata_texts(session, project, study_uid, series_uid, sop_uid)
        if not found:
            return None
        root = self.settings.public_url.rstrip("/")
        parts = []
        for attributes in found:
            # a value cannot hold this text unescaped: only the URIs themselves match
            parts.append(str(attributes).replace('"BulkDataURI": "/', f'"BulkDataURI": "{root}/'))
        return f"[{','.join(parts)}]".encode(), len(parts)

    async def instances(self, project: str, **filters: Any) -> list[Instance]:
        async with self.db.session() as session:
            return await reads.instances_of(session, project, **filters)

    async def middle_instance(
        self, project: str, study: str, series: str | None = None
    ) -> Instance | None:
        async with self.db.session() as session:
            return await reads.middle_instance(session, project, study, series)

    async def subjects(self, project: str) -> list[tuple[str, int]]:
        async with self.db.session() as session:
            return await reads.subjects(session, project)

    async def instance(self, project: str, study: str, series: str, sop: str) -> Instance:
        found = await self.instances(project, study_uid=study, series_uid=series, sop_uid=sop)
        if not found:
            raise NotFound(
                f"no instance {sop} in series {series} of study {study} in project {project!r}"
            )
        return found[0]

    async def file(self, instance: Instance) -> bytes:
        return await self.store.get(self.archive, instance.object_key)


def _bad_data(exc: DBAPIError) -> bool:
    """The database refused what a row holds (SQLSTATE class 22, data exception, or 23,
    integrity), rather than being unreachable or failing."""
    cause: BaseException | None = exc.orig
    while cause is not None:
        state = getattr(cause, "sqlstate", None)
        if isinstance(state, str):
            return state[:2] in ("22", "23")
        cause = cause.__cause__
    return False

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from giftcloud_core.app import Runtime, ServicePart, create_app
from giftcloud_core.bus import Subscription
from giftcloud_core.errors import NotFound
from giftcloud_core.gates import Gates
from giftcloud_core.jobs import Jobs
from giftcloud_core.settings import Settings
from giftcloud_core.tokens import READ_ROLES, Principal
from pydantic import BaseModel

from giftcloud_anonymise.models import SCHEMA
from giftcloud_anonymise.profiles import routes as profile_routes
from giftcloud_anonymise.profiles.service import REFRESH_SECONDS as PROFILES_SECONDS
from giftcloud_anonymise.profiles.service import ProjectProfiles
from giftcloud_anonymise.quarantine import routes as quarantine_routes
from giftcloud_anonymise.quarantine.service import Quarantine
from giftcloud_anonymise.returning.service import Returning
from giftcloud_anonymise.service import AnonymiseService

MIGRATIONS = Path(__file__).parent / "migrations"


class VaultEntry(BaseModel):
    """Who the subject was in one study, as the site's vault holds it."""

    patient_id: str
    issuer: str
    name: str
    birth_date: str
    study_uid: str
    pseudonymised_study_uid: str


class Reidentified(BaseModel):
    project: str
    subject: str
    records: list[VaultEntry]


def build(runtime: Runtime) -> ServicePart:
    settings = runtime.settings
    profiles = ProjectProfiles(settings.anonymise.profiles_dir, runtime.db, runtime.bus)
    service = AnonymiseService(settings, runtime.db, runtime.bus, runtime.store, profiles)
    gates = Gates(runtime.authenticated(), service.networks_of)
    quarantine = Quarantine(runtime.db, runtime.bus, runtime.store, settings.storage.buckets)
    returning = Returning(
        service.vault,
        lambda project: service.deidentifier(project).keys,
        runtime.store,
        settings.storage.buckets,
        runtime.bus,
    )
    Reader = Annotated[Principal, Depends(gates.project(READ_ROLES))]
    router = APIRouter(prefix="/anonymise", tags=["anonymise"])
    jobs = Jobs()
    jobs.add("profiles", profiles.refresh, seconds=PROFILES_SECONDS)

    @router.get("/reidentify/{project}/{subject}")
    async def reidentify(
        project: str, subject: str, request: Request, caller: Reader
    ) -> Reidentified:
        """Who a subject was (reidentifier role only; every read is audited)."""
        records = await service.vault.reidentify(caller, project, subject)
        await runtime.audit.record(
            request,
            "anonymise.reidentify",
            project=project,
            target=f"subject {subject}",
            outcome="success" if records else "failure",
            detail=f"{len(records)} record(s)",
        )
        if not records:
            raise NotFound(f"no vault record for subject {subject!r} in project {project!r}")
        return Reidentified(
            project=project,
            subject=subject,
            records=[
                VaultEntry(
                    patient_id=r.patient_id,
                    issuer=r.issuer,
                    name=r.name,
                    birth_date=r.birth_date,
                    study_uid=r.study_uid,
                    pseudonymised_study_uid=r.pseudonymised_study_uid,
                )
                for r in records
            ],
        )

    return ServicePart(
        name="anonymise",
        prefix="/anonymise",
        routers=[
            router,
            profile_routes.build_router(profiles, gates, runtime.audit),
            quarantine_routes.build_router(quarantine, gates, runtime.audit),
        ],
        subscriptions=[
            Subscription("anonymise.instances", service.on_received),
            Subscription("anonymise.projects", service.on_project_event),
            Subscription("anonymise.results", returning.on_arrived),
        ],
        schema=SCHEMA,
        migrations=MIGRATIONS,
        on_start=[profiles.announce, jobs.start],
        on_stop=[jobs.stop],
    )


def create(settings: Settings) -> FastAPI:
    runtime = Runtime(settings)
    return create_app(runtime, [build(runtime)], title="anonymise")

from importlib.metadata import version
from pathlib import Path

from fastapi import FastAPI
from giftcloud_core.app import Runtime, ServicePart, create_app, key_principal
from giftcloud_core.bus import Subscription
from giftcloud_core.crypto import EnvelopeCipher
from giftcloud_core.hub import HubClient
from giftcloud_core.jobs import Jobs
from giftcloud_core.settings import Settings
from giftcloud_dicom.pdu_guard import Connections

from giftcloud_api.access import Gates
from giftcloud_api.audit import routes as audit_routes
from giftcloud_api.audit.service import AuditTrail
from giftcloud_api.catalogue import routes as catalogue_routes
from giftcloud_api.catalogue.service import CatalogueService
from giftcloud_api.dicomweb import routes as dicomweb_routes
from giftcloud_api.dicomweb.delivery import Delivery
from giftcloud_api.dimse import routes as dimse_routes
from giftcloud_api.dimse.callers import Callers
from giftcloud_api.dimse.handlers import QueryRetrieve
from giftcloud_api.dimse.server import QueryRetrieveServer
from giftcloud_api.federation import routes as federation_routes
from giftcloud_api.federation.hub import HubFederation
from giftcloud_api.federation.poller import SitePoller
from giftcloud_api.federation.site import SiteFederation
from giftcloud_api.flower import routes as flower_routes
from giftcloud_api.flower.service import FlowerApps
from giftcloud_api.flowerruns import routes as flowerruns_routes
from giftcloud_api.flowerruns.nodes import FlowerNodes
from giftcloud_api.flowerruns.service import FlowerRuns
from giftcloud_api.jobs import routes as jobs_routes
from giftcloud_api.jobs.hub import HubJobs
from giftcloud_api.jobs.images import Images
from giftcloud_api.jobs.runner import JobRunner
from giftcloud_api.jobs.site import SiteJobs
from giftcloud_api.models import SCHEMA
from giftcloud_api.results import routes as results_routes
from giftcloud_api.results.files import Files
from giftcloud_api.web import guide, pages

MIGRATIONS = Path(__file__).parent / "migrations"


def build(runtime: Runtime, services: list[str] | None = None) -> ServicePart:
    service = CatalogueService(runtime.settings, runtime.db, runtime.store, runtime.bus)
    trail = AuditTrail(runtime.db)
    # api keeps the audit trail: records of this process go straight into it
    runtime.audit.sink = trail.keep_audit
    gates = Gates(runtime.authenticated(), service)
    settings = runtime.settings
    archive = settings.storage.buckets.archive
    key = settings.storage.encryption_key
    link = HubClient(settings.forward)
    hub_jobs = HubJobs(runtime.db, settings.federation)
    site_jobs = SiteJobs(runtime.db, runtime.audit, link)
    hub = HubFederation(runtime.db, settings.federation, claims=[hub_jobs.claim])
    site = SiteFederation(runtime.db, runtime.audit)
    jobs = Jobs()
    jobs.add(
        "federation",
        SitePoller(site, link, settings.federation, version("giftcloud-api"), site_jobs).round,
        seconds=settings.federation.retry_seconds,
        on_stop=link.close,
    )
    # WADO-RS and C-GET/C-MOVE share one transcoding cache
    delivery = Delivery(service)
    callers = Callers(
        runtime.db,
        EnvelopeCipher.from_base64(key.get_secret_value()) if key else None,
        # looked up at call time: `giftcloud up` rewires the runtime's verifier and keys
        key_principal=lambda api_key: key_principal(api_key, runtime.verifier, runtime.keys),
        token_principal=lambda token: runtime.verifier.verify(token),
    )
    connections = Connections(settings.api.dimse_max_connections_per_address)
    query_retrieve = QueryRetrieveServer(
        settings.api, QueryRetrieve(service, delivery, callers, runtime.audit, connections)
    )
    images = Images(runtime.store, settings.storage.buckets.incoming, runtime.bus)
    runner = JobRunner(runtime.db, runtime.store, archive, settings.federation, site_jobs, images)
    jobs.add(
        "analysis jobs",
        runner.round,
        seconds=settings.federation.standing_seconds,
        wake=site_jobs.wake,
    )
    return ServicePart(
        name="api",
        routers=[
            pages.build_router(service, runtime, services or ["api"]),
            guide.build_router(),
            catalogue_routes.build_router(service, gates, runtime.audit, runtime.db, runtime.bus),
            audit_routes.build_router(trail, gates, runtime.audit),
            dicomweb_routes.build_router(service, gates, runtime.audit, delivery),
            dimse_routes.build_router(callers, gates, runtime.audit),
            federation_routes.build_router(hub, site, gates, runtime.audit),
            jobs_routes.build_router(hub, hub_jobs, site_jobs, gates, runtime.audit),
            flower_routes.build_router(FlowerApps(runtime.db), gates, runtime.audit),
            flowerruns_routes.build_router(
                FlowerRuns(runtime.db, settings.federation),
                FlowerNodes(runtime.db),
                gates,
                runtime.audit,
            ),
            results_routes.build_router(
                runtime.db,
                Files(runtime.db, runtime.store, archive),
                gates,
                runtime.audit,
                runtime.settings.limits.max_file_bytes,
            ),
        ],
        subscriptions=[
            Subscription("api.catalogue", service.on_event),
            Subscription("api.audit", trail.on_audit),
        ],
        schema=SCHEMA,
        migrations=MIGRATIONS,
        on_start=[jobs.start, query_retrieve.start],
        on_stop=[query_retrieve.stop, jobs.stop],
        # alone behind the gateway, its /docs offers the other services' documents too
        peer_docs=[]
        if services
        else [(name, f"/{name}/openapi.json") for name in ("auth", "ingest", "anonymise")],
    )


def create(settings: Settings) -> FastAPI:
    runtime = Runtime(settings)
    return create_app(runtime, [build(runtime)], title="api")

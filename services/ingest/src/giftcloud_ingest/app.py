"""ingest, composed: the receiving core, the ways in (STOW-RS, the DICOM node, retrieval),
forwarding to a hub, results pulled back from it and delivered to the hospital, and the
background work on one job runner."""

from pathlib import Path

from fastapi import FastAPI
from giftcloud_core.app import Runtime, ServicePart, create_app
from giftcloud_core.bus import Subscription
from giftcloud_core.events import Event, InstancesArchived, ResultMade
from giftcloud_core.gates import Gates
from giftcloud_core.jobs import Jobs
from giftcloud_core.settings import Settings

from giftcloud_ingest.dimse import routes as dimse_routes
from giftcloud_ingest.dimse.routing import DicomRoutes
from giftcloud_ingest.dimse.server import DicomNode
from giftcloud_ingest.forwarding import routes as forwarding_routes
from giftcloud_ingest.forwarding.hub import HubClient
from giftcloud_ingest.forwarding.sender import Sender
from giftcloud_ingest.forwarding.service import Forwarding
from giftcloud_ingest.models import SCHEMA
from giftcloud_ingest.receiving.profiles import REFRESH_SECONDS as PROFILES_SECONDS
from giftcloud_ingest.receiving.service import Receiver
from giftcloud_ingest.retrieval import routes as retrieval_routes
from giftcloud_ingest.retrieval.scu import Scu
from giftcloud_ingest.retrieval.service import Retrievals
from giftcloud_ingest.retrieval.worker import RetrievalWorker
from giftcloud_ingest.returns import routes as returns_routes
from giftcloud_ingest.returns.delivery import Deliverer
from giftcloud_ingest.returns.puller import Puller
from giftcloud_ingest.returns.service import Returns
from giftcloud_ingest.stow import routes as stow_routes

MIGRATIONS = Path(__file__).parent / "migrations"
#: how often the sweep looks for what a dead process left
SWEEP_SECONDS = 60.0


def build(runtime: Runtime) -> ServicePart:
    settings = runtime.settings
    config = settings.ingest
    receiver = Receiver(settings, runtime.db, runtime.bus, runtime.store)
    scu = Scu(config.dicom_ae_title)
    retrievals = Retrievals(config, runtime.db, scu)
    worker = RetrievalWorker(config, runtime.db, scu)
    hub = HubClient(settings.forward)
    forwarding = Forwarding(hub, runtime.db)
    sender = Sender(forwarding, hub, runtime.store, settings.storage.buckets.archive)
    returns = Returns(runtime.db, hub, runtime.store, settings.storage.buckets)
    puller = Puller(returns, runtime.bus)
    deliverer = Deliverer(returns, scu, settings.forward, runtime.audit)
    routes = DicomRoutes(runtime.db)
    node = DicomNode(settings, receiver, routes, on_stored=retrievals.attribute)
    dicom = config.dicom_port != 0

    jobs = Jobs()
    jobs.add("sweep", receiver.sweep, seconds=SWEEP_SECONDS)
    jobs.add("profiles", receiver.profiles.refresh, seconds=PROFILES_SECONDS)
    jobs.add("forwarding", sender.round, seconds=settings.forward.poll_seconds, on_stop=hub.close)
    jobs.add("results-pull", puller.round, seconds=settings.forward.pull_seconds)
    jobs.add(
        "results-delivery",
        deliverer.round,
        seconds=settings.forward.poll_seconds,
        wake=returns.wake,
    )
    if dicom:  # moves come in through the node
        jobs.add(
            "retrievals",
            worker.round,
            seconds=config.retrieval_poll_seconds,
            wake=retrievals.wake,
            on_stop=worker.stop,
        )

    async def on_result(event: Event) -> None:
        """anonymise's answer about a result; or a result a federated job made here."""
        if isinstance(event, ResultMade):
            await puller.take_made(event)
        else:
            await returns.on_prepared(event)

    async def on_outcome(event: Event) -> None:
        if isinstance(event, InstancesArchived):  # into the outbox before it is acknowledged
            await forwarding.enqueue(event)
        else:
            await receiver.records.on_outcome(event)

    gates = Gates(runtime.authenticated(), receiver.networks_of)
    return ServicePart(
        name="ingest",
        prefix="/ingest",
        routers=[
            stow_routes.build_router(settings, receiver, gates, runtime.audit),
            dimse_routes.build_router(routes, gates, runtime.audit),
            retrieval_routes.build_router(retrievals, gates, runtime.audit),
            forwarding_routes.build_router(forwarding, gates, runtime.audit),
            returns_routes.build_router(returns, gates, runtime.audit),
        ],
        subscriptions=[
            Subscription("ingest.projects", receiver.on_project_event),
            Subscription("ingest.profiles", receiver.profiles.on_event),
            Subscription("ingest.outcomes", on_outcome),
            Subscription("ingest.results", on_result),
        ],
        schema=SCHEMA,
        migrations=MIGRATIONS,
        on_start=[*([node.start] if dicom else []), jobs.start],
        on_drain=[node.stop] if dicom else [],
        on_stop=[jobs.stop],
    )


def create(settings: Settings) -> FastAPI:
    runtime = Runtime(settings)
    return create_app(runtime, [build(runtime)], title="ingest")

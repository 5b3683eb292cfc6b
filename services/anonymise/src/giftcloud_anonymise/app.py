from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from giftcloud_core.app import Runtime, ServicePart, create_app
from giftcloud_core.bus import Subscription
from giftcloud_core.settings import Settings

from giftcloud_anonymise.models import SCHEMA
from giftcloud_anonymise.service import AnonymiseService

MIGRATIONS = Path(__file__).parent / "migrations"


def build(runtime: Runtime) -> ServicePart:
    service = AnonymiseService(runtime.settings, runtime.db, runtime.bus, runtime.store)
    return ServicePart(
        name="anonymise",
        subscriptions=[Subscription("anonymise.instances", service.on_received)],
        schema=SCHEMA,
        migrations=MIGRATIONS,
    )


def create(settings: Settings) -> FastAPI:
    runtime = Runtime(settings)
    return create_app(runtime, [build(runtime)], title="anonymise")

"""Builds the services' apps: one (``serve``) or all in one process (``up``)."""

from __future__ import annotations

import importlib
from typing import Protocol

from fastapi import FastAPI
from giftcloud_core.app import Runtime, ServicePart, create_app
from giftcloud_core.settings import Settings

SERVICES = ("auth", "ingest", "anonymise", "archive", "api")
DEFAULT_PORTS = {"auth": 8001, "ingest": 8002, "anonymise": 8003, "archive": 8004, "api": 8005}


class _Creates(Protocol):
    def create(self, settings: Settings) -> FastAPI: ...


def service_app(name: str, settings: Settings) -> FastAPI:
    """The app of one service, configured from ``settings``."""
    if name not in SERVICES:
        raise SystemExit(f"unknown service {name!r}: choose one of {', '.join(SERVICES)}")
    module: _Creates = importlib.import_module(f"giftcloud_{name}.app")
    return module.create(settings)


def all_in_one(settings: Settings) -> FastAPI:
    """Every service in one app on one runtime; tokens are checked against auth's key in process."""
    from giftcloud_anonymise.app import build as build_anonymise
    from giftcloud_api.app import build as build_api
    from giftcloud_archive.app import build as build_archive
    from giftcloud_auth.app import build as build_auth
    from giftcloud_auth.app import in_process
    from giftcloud_ingest.app import build as build_ingest

    runtime = Runtime(settings)
    auth_part, auth_service = build_auth(runtime)
    runtime.verifier, runtime.keys = in_process(auth_service, settings)
    parts: list[ServicePart] = [
        auth_part,
        build_ingest(runtime),
        build_anonymise(runtime),
        build_archive(runtime),
        build_api(runtime, list(SERVICES)),
    ]
    return create_app(runtime, parts, title="giftcloud")

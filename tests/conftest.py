"""Fixtures shared by every suite. Real infrastructure is started here when a test asks for it."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
# no DICOM node on 11112 unless a test asks for one on a port of its own (subprocesses
# such as `giftcloud up` inherit this)
os.environ.setdefault("GIFTCLOUD_INGEST__DICOM_PORT", "0")

from support.deployment import SERVICES, Deployment, deployed
from support.infra import (
    Seaweed,
    create_database,
    delete_bus_topology,
    drop_database,
    port_open,
)
from support.shared import SHARED, absent
from support.stack import Stack

TCIA = SHARED / "data" / "tcia-pseudo-phi"


def _require(port: int, what: str) -> None:
    if not port_open(port):
        pytest.fail(f"{what} is not running on 127.0.0.1:{port}: scripts/test starts it")


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    server = Seaweed(tmp_path_factory.mktemp("seaweed")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def real_services() -> None:
    _require(5432, "PostgreSQL")
    _require(5672, "RabbitMQ")


@pytest.fixture
def stack(real_services: None, seaweed: Seaweed) -> Iterator[Stack]:
    """A fresh database, queue namespace and buckets on the real servers."""
    name = create_database()
    made = Stack(database=name, s3_endpoint=seaweed.endpoint)
    try:
        yield made
    finally:
        drop_database(name)
        asyncio.run(delete_bus_topology(made.exchange, made.namespace))
        seaweed.drop_buckets(made.buckets())


@pytest.fixture(scope="session")
def tcia_files() -> list[Path]:
    files = sorted(TCIA.glob("*.dcm"))
    if not files:
        absent("the TCIA pseudo-PHI series", TCIA)
    return files


@pytest.fixture(scope="module")
def deployment(  # the five services as separate processes behind nginx
    real_services: None, seaweed: Seaweed, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    logs = tmp_path_factory.mktemp("services")
    try:
        with deployed(seaweed, logs) as running:
            yield running
    finally:
        for name in SERVICES:  # a failing run shows what the services said
            log = logs / f"{name}.log"
            if log.exists():
                print(
                    f"--- {name} log (tail) ---\n" + "\n".join(log.read_text().splitlines()[-15:])
                )

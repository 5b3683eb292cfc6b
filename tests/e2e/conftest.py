"""The five services as separate processes on the real servers, behind nginx."""

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.deployment import SERVICES, Deployment, deployed
from support.infra import Seaweed


@pytest.fixture(scope="module")
def deployment(
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


def wait_until_settled(
    deployment: Deployment, project: str, upload_ids: list[str], timeout: float = 180
) -> list[dict[str, object]]:
    """Wait until every accepted instance of these uploads is archived or rejected."""
    headers = deployment.token()
    deadline = time.monotonic() + timeout
    while True:
        statuses = [
            httpx.get(f"{deployment.url}/ingest/{project}/uploads/{u}", headers=headers).json()
            for u in upload_ids
        ]
        if all(s["pending"] == 0 for s in statuses):
            return statuses
        if time.monotonic() > deadline:
            raise AssertionError(f"uploads not settled in {timeout}s: {statuses}")
        time.sleep(0.5)


def logs_of(deployment: Deployment, name: str) -> str:
    return Path(deployment.services[name].log_path).read_text()

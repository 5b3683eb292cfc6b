"""Helpers for the five services as separate processes behind nginx (the ``deployment``
fixture is in tests/conftest.py: the browser tests use it too)."""

import time
from pathlib import Path

import httpx
from support.deployment import Deployment


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

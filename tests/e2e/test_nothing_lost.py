"""200 instances in flight; a service is killed (-9) or the broker restarts midway: every
instance ends up archived exactly once and nothing is dead-lettered."""

import threading
import time
from collections.abc import Callable

import pytest
from e2e.conftest import Deployment, wait_until_settled
from support.dicom_files import distinct_instances
from support.infra import rabbit_queue_depths, rabbitmq_restart

COUNT = 200
#: instances per STOW-RS request, so per bundle: small, so that many bundles are in flight
BATCH = 4


def run_with_disruption(
    deployment: Deployment,
    project: str,
    disrupt: Callable[[], None],
    release: Callable[[], None] | None = None,
) -> None:
    deployment.create_project(project)
    admin = deployment.token()
    files = distinct_instances(COUNT, str(sum(map(ord, project))))
    uploads: list[str] = []

    def send() -> None:
        for start in range(0, COUNT, BATCH):
            response = deployment.stow(project, files[start : start + BATCH], admin)
            assert response.status_code == 200, response.text
            uploads.append(response.headers["X-Giftcloud-Upload"])

    sender = threading.Thread(target=send)
    sender.start()
    if release is not None:  # everything accepted and queued durably; now let it flow
        sender.join()
        release()
    # disrupt as soon as the first instances come out the far end, with most still in flight
    deadline = time.monotonic() + 60
    while deployment.instance_count(project, admin) == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    at_disruption = deployment.instance_count(project, admin)
    disrupt()
    sender.join()
    assert at_disruption < COUNT, "the pipeline finished before the disruption: nothing was tested"
    assert len(uploads) == COUNT // BATCH

    statuses = wait_until_settled(deployment, project, uploads, timeout=300)
    admin = deployment.token()
    assert sum(int(s["archived"]) for s in statuses) == COUNT  # type: ignore[call-overload]
    assert all(s["rejected"] == [] for s in statuses)
    assert deployment.instance_count(project, admin) == COUNT

    buckets = deployment.stack.env()
    import asyncio

    from giftcloud_core.settings import StorageSettings
    from giftcloud_core.storage import S3ObjectStore

    store = S3ObjectStore(StorageSettings(endpoint=deployment.stack.s3_endpoint))
    archived = asyncio.run(
        store.list(buckets["GIFTCLOUD_STORAGE__BUCKETS__ARCHIVE"], f"{project}/")
    )
    # one object per instance, nothing else (its metadata is in the catalogue)
    assert len(archived) == len([k for k in archived if k.endswith(".dcm")]) == COUNT
    for bucket in ("INCOMING", "OUTGOING", "QUARANTINE"):
        assert (
            asyncio.run(store.list(buckets[f"GIFTCLOUD_STORAGE__BUCKETS__{bucket}"], f"{project}/"))
            == []
        )
    depths = rabbit_queue_depths(deployment.stack.namespace)
    assert {q: n for q, n in depths.items() if q.endswith(".dlq") and n} == {}


@pytest.mark.parametrize("service", ["anonymise", "archive"])
def test_a_killed_service_loses_nothing(deployment: Deployment, service: str) -> None:
    def kill_and_restart() -> None:
        deployment.services[service].kill()
        deployment.services[service].start()

    run_with_disruption(deployment, f"lost-{service}", kill_and_restart)


def test_a_broker_restart_loses_nothing(deployment: Deployment) -> None:
    # ingest needs the broker to accept: queue all 200 with anonymise stopped, then let
    # them flow and restart the broker while they are in flight
    anonymise = deployment.services["anonymise"]
    anonymise.stop()
    run_with_disruption(
        deployment, "lost-broker", rabbitmq_restart, release=lambda: anonymise.start(wait=False)
    )

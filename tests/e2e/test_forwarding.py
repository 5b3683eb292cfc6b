"""Site → hub: two deployments of the five services on the real servers, the hub in verify
mode. The site forwards each archived (de-identified) instance to the hub's STOW-RS with an
OAuth2 client the hub issued; kill -9 of the hub's ingest during forwarding loses and
doubles nothing; an instance still carrying PID, planted by hand in the site's outgoing
path, is refused by the hub."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from giftcloud_core.storage import create_store
from support.deployment import Deployment
from support.deployment import site_and_hub as paired
from support.dicom_files import distinct_instances, synthetic_instance
from support.infra import Seaweed, db_url, wait_for

PROJECT = "shared"
COUNT = 40


@pytest.fixture(scope="module")
def site_and_hub(
    real_services: None, seaweed: Seaweed, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Deployment, Deployment]]:
    with paired(
        seaweed,
        tmp_path_factory.mktemp("forwarding"),
        PROJECT,
        GIFTCLOUD_FORWARD__BATCH="5",
        GIFTCLOUD_FORWARD__RETRY_BASE_SECONDS="0.5",
        GIFTCLOUD_FORWARD__POLL_SECONDS="0.2",
    ) as both:
        yield both


def forwarding(site: Deployment) -> dict[str, Any]:
    response = httpx.get(f"{site.url}/ingest/{PROJECT}/forwarding", headers=site.token())
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def test_a_project_forwards_only_when_its_owner_says_so(
    site_and_hub: tuple[Deployment, Deployment],
) -> None:
    site, hub = site_and_hub
    assert forwarding(site)["enabled"] is False
    enabled = httpx.put(
        f"{site.url}/ingest/{PROJECT}/forwarding", json={"enabled": True}, headers=site.token()
    )
    assert enabled.status_code == 200 and enabled.json()["enabled"] is True
    assert enabled.json()["hub"] == hub.url
    # a deployment without a hub says so
    nohub = httpx.put(
        f"{hub.url}/ingest/{PROJECT}/forwarding", json={"enabled": True}, headers=hub.token()
    )
    assert nohub.status_code == 409 and "GIFTCLOUD_FORWARD__HUB_URL" in nohub.text


def test_every_instance_arrives_at_the_hub_once_though_the_hub_is_killed(
    site_and_hub: tuple[Deployment, Deployment],
) -> None:
    site, hub = site_and_hub
    files = distinct_instances(COUNT, tag="81")
    headers = site.token()
    half = COUNT // 2
    for start in range(0, half, 10):
        assert site.stow(PROJECT, files[start : start + 10], headers).status_code == 200
    hub_headers = hub.token()
    wait_for(
        lambda: hub.instance_count(PROJECT, hub_headers) >= 5,
        timeout=120,
        what="the first instances at the hub",
    )
    hub.services["ingest"].kill()
    # the rest arrive at the site while the hub is away: the site has them to forward
    # (sent before the kill, a fast site could have forwarded everything already)
    for start in range(half, COUNT, 10):
        assert site.stow(PROJECT, files[start : start + 10], headers).status_code == 200
    wait_for(lambda: forwarding(site)["last_error"] != "", timeout=60, what="the site notices")
    hub.services["ingest"].start()
    wait_for(
        lambda: hub.instance_count(PROJECT, hub.token()) >= COUNT,
        timeout=300,
        what="all instances at the hub",
    )
    status = wait_for(
        lambda: (found := forwarding(site))["backlog"] == 0 and found,
        timeout=60,
        what="the site's backlog empty",
    )
    assert status["failed"] == 0, status
    assert hub.instance_count(PROJECT, hub.token()) == COUNT  # none twice
    assert site.instance_count(PROJECT, headers) == COUNT
    # what the hub holds is what the site de-identified: the same UIDs, no planted PID
    site_studies = httpx.get(
        f"{site.url}/dicomweb/{PROJECT}/studies", params={"limit": 100}, headers=headers
    ).json()
    hub_studies = httpx.get(
        f"{hub.url}/dicomweb/{PROJECT}/studies",
        params={"limit": 100, "includefield": "all"},
        headers=hub.token(),
    ).json()
    uid = "0020000D"
    assert {s[uid]["Value"][0] for s in site_studies} == {s[uid]["Value"][0] for s in hub_studies}
    assert "Patient^81" not in str(hub_studies) and "Secret Lane" not in str(hub_studies)
    # the backlog is in the site's metrics
    metrics = httpx.get(f"{site.services['ingest'].url}/metrics").text
    assert f'giftcloud_forward_backlog{{project="{PROJECT}",state="pending"}} 0.0' in metrics
    assert "giftcloud_forwarded_total" in metrics


def test_an_instance_still_carrying_pid_is_refused_by_the_hub(
    site_and_hub: tuple[Deployment, Deployment],
) -> None:
    """Planted by hand in the site's outgoing path (the archive and the outbox), as a bug
    upstream would leave it: the hub's verify mode refuses it, and says why."""
    site, hub = site_and_hub
    before = hub.instance_count(PROJECT, hub.token())
    identifiable = synthetic_instance(patient="Leak^Larry", patient_id="LEAK-1")
    sop = "1.2.826.0.1.3680043.9.7.99.1"
    from support.dicom_files import with_uids

    identifiable = with_uids(identifiable, SOPInstanceUID=sop)
    key = f"{PROJECT}/planted/{sop}.dcm"
    settings = site.stack.settings()
    asyncio.run(_plant(settings, key, identifiable, sop, site.stack.database))
    hub_headers = hub.token()

    def refused() -> dict[str, Any] | None:
        uploads = httpx.get(f"{hub.url}/ingest/{PROJECT}/uploads", headers=hub_headers).json()
        for upload in uploads:
            status = httpx.get(
                f"{hub.url}/ingest/{PROJECT}/uploads/{upload['id']}", headers=hub_headers
            ).json()
            if status["rejected"]:
                result: dict[str, Any] = status
                return result
        return None

    status = wait_for(refused, timeout=120, what="the hub refusing the planted instance")
    reasons = " ".join(r["reason"] for r in status["rejected"])
    assert "PatientIdentityRemoved" in reasons or "identif" in reasons.lower(), reasons
    assert hub.instance_count(PROJECT, hub.token()) == before
    assert (
        "Leak^Larry"
        not in httpx.get(
            f"{hub.url}/dicomweb/{PROJECT}/instances",
            params={"includefield": "all"},
            headers=hub.token(),
        ).text
    )


async def _plant(settings: Any, key: str, data: bytes, sop: str, database: str) -> None:
    store = create_store(settings.storage)
    await store.put(settings.storage.buckets.archive, key, data)
    connection = await asyncpg.connect(db_url(database).replace("+asyncpg", ""))
    try:
        now = datetime.now(UTC)
        await connection.execute(
            "INSERT INTO ingest.forward_outbox (project, sop_uid, object_key, state, attempts,"
            " next_at, last_error, created_at) VALUES ($1, $2, $3, 'pending', 0, $4, '', $4)",
            PROJECT,
            sop,
            key,
            now,
        )
    finally:
        await connection.close()


def test_logs_name_no_secret(site_and_hub: tuple[Deployment, Deployment]) -> None:
    site, _ = site_and_hub
    secret = site.services["ingest"].env["GIFTCLOUD_FORWARD__CLIENT_SECRET"]
    assert secret not in Path(site.services["ingest"].log_path).read_text()

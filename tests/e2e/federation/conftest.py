"""A hub and two sites, the five services each on the real servers, shared by the
federation tests: the same project at each, one person at the hub who asks, each site's
cohort STOWed and archived, and federation turned on by each site's admin."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest
from giftcloud_deid.vault import generate_keypair
from support.deployment import Deployment, deployed
from support.federated import COHORTS, PROJECT, ROSA, cohort
from support.federated import sites as _sites
from support.infra import Seaweed, wait_for


@pytest.fixture(scope="package")
def federation(
    real_services: None, seaweed: Seaweed, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Deployment, dict[str, Deployment]]]:
    logs = tmp_path_factory.mktemp("federation")
    with ExitStack() as stack:
        (logs / "hub").mkdir()
        hub = stack.enter_context(
            deployed(seaweed, logs / "hub", GIFTCLOUD_FEDERATION__ANSWER_SECONDS="15")
        )
        hub.create_project(PROJECT)
        admin = hub.token()
        hub.add_person(*ROSA, PROJECT, "member")
        sites = {}
        for name, counts in COHORTS.items():
            client = httpx.post(
                f"{hub.url}/auth/clients",
                json={"name": name, "grants": [{"project": PROJECT, "role": "member"}]},
                headers=admin,
            )
            assert client.status_code == 201, client.text
            credential = client.json()
            made = httpx.post(
                f"{hub.url}/api/federation/sites",
                json={"name": name, "client_id": credential["client_id"]},
                headers=admin,
            )
            assert made.status_code == 201, made.text
            (logs / name).mkdir()
            # each site's vault: results made here (a job's images) are mapped back with it
            private, public = generate_keypair()
            (logs / name / "vault.key").write_bytes(private)
            (logs / name / "vault.pub").write_bytes(public)
            site = stack.enter_context(
                deployed(
                    seaweed,
                    logs / name,
                    GIFTCLOUD_FORWARD__HUB_URL=hub.url,
                    GIFTCLOUD_FORWARD__CLIENT_ID=credential["client_id"],
                    GIFTCLOUD_FORWARD__CLIENT_SECRET=credential["client_secret"],
                    GIFTCLOUD_FEDERATION__RETRY_SECONDS="0.5",
                    GIFTCLOUD_FEDERATION__WAIT_SECONDS="5",
                    GIFTCLOUD_FEDERATION__STANDING_SECONDS="1",
                    GIFTCLOUD_ANONYMISE__VAULT_PUBLIC_KEY=str(logs / name / "vault.pub"),
                    GIFTCLOUD_ANONYMISE__VAULT_PRIVATE_KEY=str(logs / name / "vault.key"),
                )
            )
            site.create_project(PROJECT)
            files = cohort(name, counts)
            stored = site.stow(PROJECT, files, site.token())
            assert stored.status_code == 200, stored.text
            headers = site.token()
            wait_for(
                lambda site=site, headers=headers, n=len(files): (
                    site.instance_count(PROJECT, headers) == n
                ),
                timeout=180,
                what=f"{name}'s cohort archived",
            )
            sites[name] = site
        # a site's federation is off until its admin turns it on: the hub has not heard of it
        assert all(not s["enabled"] and s["last_seen_at"] is None for s in _sites(hub))
        for site in sites.values():
            on = httpx.put(
                f"{site.url}/api/federation/policy", json={"enabled": True}, headers=site.token()
            )
            assert on.status_code == 200 and on.json()["k"] == 10, on.text
        wait_for(
            lambda: all(s["enabled"] and s["last_seen_at"] for s in _sites(hub)),
            timeout=30,
            what="both sites calling the hub",
        )
        yield hub, sites

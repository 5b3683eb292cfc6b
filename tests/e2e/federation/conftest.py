"""A hub and two sites, the five services each on the real servers, shared by the
federation tests: the same project at each, one person at the hub who asks, each site's
cohort STOWed and archived, and federation turned on by each site's admin; and Flower
beside them (the SuperLink at the hub, a SuperNode and gate per site), for the Flower
tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from giftcloud_deid.vault import generate_keypair
from support.cli import User
from support.deployment import Deployment, deployed
from support.federated import COHORTS, PROJECT, ROSA, cohort
from support.federated import sites as _sites
from support.flower import build, gateway, node_key, superlink, supernode
from support.infra import Seaweed, wait_for


@pytest.fixture(scope="package")
def federation(
    real_services: None, seaweed: Seaweed, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Deployment, dict[str, Deployment]]]:
    logs = tmp_path_factory.mktemp("federation")
    with ExitStack() as stack:
        (logs / "hub").mkdir()
        hub = stack.enter_context(
            deployed(
                seaweed,
                logs / "hub",
                GIFTCLOUD_FEDERATION__ANSWER_SECONDS="15",
                # a Flower run whose runner was killed is taken back 10 s after its last word
                GIFTCLOUD_FEDERATION__FLOWER_LEASE_SECONDS="10",
            )
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


# module scope: each Flower module gets its own, stopped at its end (a package-scoped one
# lives on: this folder is no Python package, so "package" means the whole run here)
@pytest.fixture(scope="module")
def flower(
    federation: tuple[Deployment, dict[str, Deployment]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    hub_deployment, sites = federation
    folder = tmp_path_factory.mktemp("flower")
    apps = folder / "apps"
    apps.mkdir()
    statistics, statistics_digest = build("statistics", apps)
    fedavg, fedavg_digest = build("fedavg", apps)
    (apps / "changed").mkdir()
    changed, changed_digest = build("statistics", apps / "changed", change="\n# one line more\n")
    with ExitStack() as stack:
        hub = stack.enter_context(superlink(folder))
        # site-a dials the hub's gateway (TLS, /v1/fleet/ passed on), site-b the SuperLink
        front = gateway(hub, hub_deployment.gateway.upstreams, folder / "gateway")
        stack.callback(front.stop)
        hub.connect("gateway", front.port)
        health = {}
        for name, site in sites.items():
            here = folder / name
            here.mkdir()
            private, public = node_key(here, "node")
            registered = hub.flwr("supernode", "register", public, "hub")
            assert registered.returncode == 0, registered.stdout + registered.stderr
            made = httpx.post(
                f"{site.url}/auth/projects/{PROJECT}/keys",
                json={"name": "flower", "role": "member"},
                headers=site.token(),
            )
            assert made.status_code == 201, made.text
            (here / "key").write_text(made.json()["key"])
            # the site's admin approves the two apps by digest, in the site's own api
            admin = User(here / "admin")
            login = {
                "GIFTCLOUD_USERNAME": "admin",
                "GIFTCLOUD_PASSWORD": "admin-test-password",
                "GIFTCLOUD_URL": site.url,
            }
            admin.run("login", env=login)
            # only this key may report the gate's decisions and spend learning's budget
            gate = admin.run("federate", "flower", "--gate", made.json()["id"], env=login)
            assert f"gate: key {made.json()['id']}" in gate.stdout
            for app, digest in (("statistics", statistics_digest), ("fedavg", fedavg_digest)):
                shown = admin.run("federate", "flower", "--approve", f"{app}={digest}", env=login)
                assert digest in shown.stdout
            site_file = here / "site.json"
            site_file.write_text(
                json.dumps(
                    {
                        "site": name,
                        "policy": {"k": 10, "max_bins_share": 0.2},
                        "api": {"url": site.url, "project": PROJECT, "key_file": str(here / "key")},
                    }
                )
            )
            via = front.port if name == "site-a" else None
            health[name] = stack.enter_context(supernode(hub, here, private, site_file, via))
        yield {
            "hub_deployment": hub_deployment,
            "sites": sites,
            "gateway": front,
            "health": health,
            "hub": hub,
            "folder": folder,
            "statistics": statistics,
            "fedavg": fedavg,
            "changed": (changed, changed_digest),
        }

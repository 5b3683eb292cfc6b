"""The five giftcloud services as separate processes on the real servers, behind nginx:
used by the e2e tests and by bench/."""

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from giftcloud.client import multipart_related
from giftcloud_core.bus import create_bus
from giftcloud_core.events import Event

from support.infra import (
    Nginx,
    Seaweed,
    ServiceProcess,
    create_database,
    delete_bus_topology,
    drop_database,
    free_port,
    wait_for,
)
from support.stack import Stack

SERVICES = ("auth", "ingest", "anonymise", "archive", "api")


@dataclass
class Deployment:
    stack: Stack
    services: dict[str, ServiceProcess]
    gateway: Nginx

    @property
    def url(self) -> str:
        return self.gateway.url

    def token(self, user: str = "admin", password: str = "admin-test-password") -> dict[str, str]:
        response = httpx.post(
            f"{self.url}/auth/token", data={"username": user, "password": password}
        )
        response.raise_for_status()
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def create_project(self, name: str) -> None:
        headers = self.token()
        response = httpx.post(f"{self.url}/auth/projects", json={"name": name}, headers=headers)
        assert response.status_code in (201, 409), response.text

        def known() -> bool:  # ingest and api learn projects from events
            return all(
                httpx.get(f"{self.url}{path}", headers=headers).status_code in (200, 204)
                for path in (f"/ingest/{name}/uploads", f"/dicomweb/{name}/studies")
            )

        wait_for(known, timeout=30, what=f"project {name} known to ingest and api")

    def add_person(
        self,
        username: str,
        password: str,
        project: str,
        role: str,
        site_roles: tuple[str, ...] = (),
    ) -> None:
        """An account (made by the admin) with ``role`` on ``project``."""
        admin = self.token()
        made = httpx.post(
            f"{self.url}/auth/users",
            json={"username": username, "password": password, "site_roles": list(site_roles)},
            headers=admin,
        )
        assert made.status_code == 201, made.text
        member = httpx.put(
            f"{self.url}/auth/projects/{project}/members",
            json={"username": username, "role": role},
            headers=admin,
        )
        assert member.status_code in (200, 204), member.text

    def publish(self, event: Event) -> None:
        """Put an event on the deployment's bus, as a service would."""

        async def publish() -> None:
            bus = create_bus(self.stack.settings().bus)
            await bus.start()
            try:
                await bus.publish(event)
            finally:
                await bus.close()

        # in a thread of its own: the caller's may run a loop already (Playwright's does)
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, publish()).result()

    def stow(self, project: str, files: list[bytes], headers: dict[str, str]) -> httpx.Response:
        body, content_type = multipart_related(files)
        return httpx.post(
            f"{self.url}/dicomweb/{project}/studies",
            content=body,
            timeout=120,
            headers={**headers, "Content-Type": content_type},
        )

    def memory(self, service: str) -> dict[str, int]:
        """The service process's resident set now (VmRSS) and at its peak (VmHWM), bytes."""
        process = self.services[service].process
        assert process is not None
        fields = {}
        for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0]) * 1024
        return fields

    def reset_peak_memory(self, service: str) -> None:
        """Start the service's VmHWM afresh from its VmRSS (Linux: clear_refs 5)."""
        process = self.services[service].process
        assert process is not None
        Path(f"/proc/{process.pid}/clear_refs").write_text("5")

    def instance_count(self, project: str, headers: dict[str, str]) -> int:
        """Instances visible to QIDO-RS: the sum of the studies' related-instance counts."""
        response = httpx.get(
            f"{self.url}/dicomweb/{project}/studies",
            params={"limit": 1000},
            headers=headers,
            timeout=60,
        )
        if response.status_code == 204:
            return 0
        response.raise_for_status()
        return sum(int(study["00201208"]["Value"][0]) for study in response.json())


@contextmanager
def deployed(seaweed: Seaweed, logs: Path, **env: str) -> Iterator[Deployment]:
    """Start auth, then the other four, then the gateway; stop and clean up all of it."""
    database = create_database()
    stack = Stack(database=database, s3_endpoint=seaweed.endpoint)
    ports = {name: free_port() for name in SERVICES}
    gateway = Nginx(logs / "nginx", upstreams=ports)
    environment = {
        **stack.env(),
        "GIFTCLOUD_AUTH__JWKS_URL": f"http://127.0.0.1:{ports['auth']}/auth/.well-known/jwks.json",
        "GIFTCLOUD_AUTH__URL": f"http://127.0.0.1:{ports['auth']}",
        "GIFTCLOUD_PUBLIC_URL": gateway.url,
        **env,
    }
    services = {
        name: ServiceProcess(name, ports[name], environment, logs / f"{name}.log")
        for name in SERVICES
    }
    try:
        services["auth"].start()
        for name in SERVICES[1:]:
            services[name].start(wait=False)
        for name in SERVICES[1:]:
            services[name].wait_ready()
        gateway.start()
        yield Deployment(stack, services, gateway)
    finally:
        gateway.stop()
        for service in services.values():
            service.stop()
        drop_database(database)
        asyncio.run(delete_bus_topology(stack.exchange, stack.namespace))
        seaweed.drop_buckets(stack.buckets())


@contextmanager
def site_and_hub(
    seaweed: Seaweed, logs: Path, project: str, **site_env: str
) -> Iterator[tuple[Deployment, Deployment]]:
    """A hub (verify mode) and a site that forwards to it with an OAuth2 client the hub
    issued (the member role on ``project``), the project made on both."""
    (logs / "hub").mkdir()
    (logs / "site").mkdir()
    with deployed(seaweed, logs / "hub", GIFTCLOUD_ANONYMISE__MODE="verify") as hub:
        hub.create_project(project)
        client = httpx.post(
            f"{hub.url}/auth/clients",
            json={"name": "site-a", "grants": [{"project": project, "role": "member"}]},
            headers=hub.token(),
        )
        assert client.status_code == 201, client.text
        credential = client.json()
        with deployed(
            seaweed,
            logs / "site",
            GIFTCLOUD_FORWARD__HUB_URL=hub.url,
            GIFTCLOUD_FORWARD__CLIENT_ID=credential["client_id"],
            GIFTCLOUD_FORWARD__CLIENT_SECRET=credential["client_secret"],
            **site_env,
        ) as site:
            site.create_project(project)
            yield site, hub

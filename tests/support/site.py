"""Every service in one app on the real servers, tokens and API keys checked against the
real auth in process (as ``giftcloud up`` does), and clients that call it from any address."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from fastapi import FastAPI
from giftcloud_anonymise.app import build as build_anonymise
from giftcloud_api.app import build as build_api
from giftcloud_archive.app import build as build_archive
from giftcloud_auth.app import build as build_auth
from giftcloud_auth.app import in_process
from giftcloud_auth.service import Auth
from giftcloud_core.app import Runtime, create_app
from giftcloud_core.settings import Settings

ADMIN_PASSWORD = "admin-test-password"


@dataclass
class Site:
    app: FastAPI
    runtime: Runtime
    auth: Auth

    def client(self, address: str = "127.0.0.1") -> httpx.AsyncClient:
        """A client whose requests come from ``address`` (the connection's peer)."""
        transport = httpx.ASGITransport(app=self.app, client=(address, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=60)

    async def token(
        self, username: str = "admin", password: str = ADMIN_PASSWORD, address: str = "127.0.0.1"
    ) -> dict[str, str]:
        async with self.client(address) as client:
            response = await client.post(
                "/auth/token", data={"username": username, "password": password}
            )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}


@asynccontextmanager
async def site(settings: Settings, *, with_ingest: bool = True) -> AsyncIterator[Site]:
    """auth, ingest, anonymise, archive and api in one app."""
    from giftcloud_ingest.app import build as build_ingest

    runtime = Runtime(settings)
    auth_part, auth_service = build_auth(runtime)
    runtime.verifier, runtime.keys = in_process(auth_service, settings)
    parts = [auth_part]
    if with_ingest:
        parts.append(build_ingest(runtime))
    parts += [build_anonymise(runtime), build_archive(runtime), build_api(runtime)]
    app = create_app(runtime, parts, title="site")
    async with app.router.lifespan_context(app):
        yield Site(app, runtime, auth_service)


async def wait_until(check: Callable[[], object], what: str, timeout: float = 30) -> None:
    import asyncio
    import inspect

    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        await asyncio.sleep(0.1)

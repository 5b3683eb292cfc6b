"""Replicas of ingest pull each project's results once at a time: the pull holds a
PostgreSQL advisory lock for its transaction (gone with the connection of an ingest that
dies), and a replica that finds it held leaves the project alone this round."""

from __future__ import annotations

from giftcloud_core.app import Runtime
from giftcloud_ingest.app import build as build_ingest
from giftcloud_ingest.forwarding.hub import HubClient
from giftcloud_ingest.returns.puller import Puller
from giftcloud_ingest.returns.service import Returns
from integration.conftest import running
from pydantic import SecretStr
from sqlalchemy import text
from support.infra import free_port


async def test_a_project_held_by_another_ingest_is_left_alone(runtime: Runtime) -> None:
    async with running(runtime, [build_ingest(runtime)]):
        settings = runtime.settings.forward.model_copy(
            update={
                "hub_url": f"http://127.0.0.1:{free_port()}",  # nobody answers there
                "client_id": "gcc_site",
                "client_secret": SecretStr("secret"),
                "timeout_seconds": 2.0,
            }
        )
        hub = HubClient(settings)
        returns = Returns(runtime.db, hub, runtime.store, runtime.settings.storage.buckets)
        await returns.set_enabled("held", True, "olga")
        puller = Puller(returns, runtime.bus)
        try:
            async with runtime.db.session() as other:  # another ingest, mid-pull
                connection = await other.connection()
                await connection.execute(
                    text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))"),
                    {"name": "giftcloud.returns.pull:held"},
                )
                await puller.round(True)
                assert (await returns.status("held"))["last_error"] == ""  # not tried
            await puller.round(True)  # let go: this one pulls, and finds no hub
            assert (await returns.status("held"))["last_error"] != ""
        finally:
            await hub.close()

"""Flower runs at a hub, against its PostgreSQL: only the registered runner's credential
takes and reports runs, and only for the projects it has a role on; a run it stops
reporting on (a runner that died) is followed again when it comes back if it had started at
the SuperLink, failed otherwise; nothing changes a run that has ended; a queued run is
cancelled at once, a running one when the runner next reports."""

from __future__ import annotations

import asyncio

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from giftcloud_api.app import build as build_api
from giftcloud_api.flowerruns.nodes import FlowerNodes
from giftcloud_api.flowerruns.schemas import CatalogueApp, FlowerRunIn, NodeReport, RunReport
from giftcloud_api.flowerruns.service import FlowerRuns
from giftcloud_core.app import Runtime
from giftcloud_core.errors import BadRequest, Conflict, Forbidden, NotFound
from giftcloud_core.tokens import Principal
from integration.conftest import running

APPS = [CatalogueApp(name="statistics", config={"bins": 4, "modality": ""})]
RUNNER = Principal("gcc_runner", kind="client", projects={"flower-p1": "collaborator"})


async def test_the_runner_takes_its_projects_runs_and_a_lapsed_lease_fails_one(
    runtime: Runtime,
) -> None:
    async with running(runtime, [build_api(runtime)]):
        settings = runtime.settings.federation.model_copy(update={"flower_lease_seconds": 0.5})
        runs = FlowerRuns(runtime.db, settings)
        with pytest.raises(NotFound, match="no Flower runner is registered"):
            await runs.ask("flower-p1", FlowerRunIn(app="statistics"), "rita")
        await runs.register("gcc_runner", "admin")
        await runs.check_runner(RUNNER)
        for stranger in (
            Principal("rita", projects={"flower-p1": "owner"}),
            Principal("gcc_other", kind="client", projects={"flower-p1": "member"}),
        ):
            with pytest.raises(Forbidden):
                await runs.check_runner(stranger)
        # until the runner has called, the hub does not know what it serves: it says so
        with pytest.raises(Conflict, match="runner has not called in yet"):
            await runs.ask("flower-p1", FlowerRunIn(app="statistics"), "rita")
        assert await runs.claim(APPS, RUNNER) is None
        assert (await runs.runner()).projects == ["flower-p1"]
        with pytest.raises(Conflict, match=r"does not serve flower-p2: .*serves: flower-p1"):
            await runs.ask("flower-p2", FlowerRunIn(app="statistics"), "rita")
        with pytest.raises(BadRequest, match="statistics takes no 'bin'"):
            await runs.ask("flower-p1", FlowerRunIn(app="statistics", config={"bin": 4}), "rita")

        first = await runs.ask(
            "flower-p1", FlowerRunIn(app="statistics", config={"bins": 3}), "rita"
        )
        second = await runs.ask("flower-p1", FlowerRunIn(app="statistics"), "sam")
        taken = await runs.claim(APPS, RUNNER)
        assert taken is not None
        assert (taken.id, taken.config, taken.asked_by) == (first.id, {"bins": 3}, "rita")
        assert not (await runs.report(first.id, RunReport(state="running", flower_run="7"))).cancel
        await asyncio.sleep(0.7)  # the runner died: its lease runs out
        # the run went on at the SuperLink: the runner, back, follows it again before anything new
        again = await runs.claim(APPS, RUNNER)
        assert again is not None
        assert (again.id, again.flower_run) == (first.id, "7")
        done = await runs.report(first.id, RunReport(state="done", result={"n": 1}))
        assert (done.state, done.result) == ("done", {"n": 1})
        with pytest.raises(Conflict, match="has ended"):
            await runs.report(first.id, RunReport(state="done", result={"n": 2}))
        # one taken but never started at the SuperLink when the runner died: failed, saying so
        taken = await runs.claim(APPS, RUNNER)
        assert taken is not None
        assert taken.id == second.id
        await asyncio.sleep(0.7)
        assert await runs.claim(APPS, RUNNER) is None
        lost = await runs.run("flower-p1", second.id)
        assert lost.state == "failed"
        assert "stopped before the run started at the SuperLink" in lost.reason
        second = await runs.ask("flower-p1", FlowerRunIn(app="statistics"), "sam")
        assert (await runs.claim(APPS, RUNNER)) is not None

        # a running run is cancelled when the runner next reports; it ends when it says so
        await runs.cancel("flower-p1", second.id)
        assert (await runs.report(second.id, RunReport(state="running"))).cancel
        ended = await runs.report(second.id, RunReport(state="cancelled", reason="stopped"))
        assert (ended.state, ended.ended_at is not None) == ("cancelled", True)
        # a queued one is cancelled at once, and never taken
        third = await runs.ask("flower-p1", FlowerRunIn(app="statistics"), "rita")
        assert (await runs.cancel("flower-p1", third.id)).state == "cancelled"
        assert await runs.claim(APPS, RUNNER) is None
        with pytest.raises(Conflict, match="has ended"):
            await runs.cancel("flower-p1", third.id)
        with pytest.raises(NotFound):
            await runs.run("flower-p2", third.id)  # another project's run is not found there


def _openssh(key: object) -> str:
    return (
        key.public_key()
        .public_bytes(  # type: ignore[attr-defined, no-any-return]
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        .decode()
    )


async def test_supernodes_are_let_in_and_out_by_the_runner_as_the_admin_asks(
    runtime: Runtime,
) -> None:
    async with running(runtime, [build_api(runtime)]):
        nodes = FlowerNodes(runtime.db)
        key = _openssh(ec.generate_private_key(ec.SECP384R1()))
        with pytest.raises(BadRequest, match="not an OpenSSH public key"):
            await nodes.ask("site-c", "ssh-rsa nonsense", "admin")
        with pytest.raises(BadRequest, match="EC P-384"):
            await nodes.ask("site-c", _openssh(rsa.generate_private_key(65537, 2048)), "admin")
        assert (await nodes.ask("site-c", key + "\n", "admin")).state == "registering"
        [task] = await nodes.tasks()
        assert (task.name, task.action, task.public_key) == ("site-c", "register", key)
        await nodes.report("site-c", NodeReport(state="registered", node_id="123"))
        assert await nodes.tasks() == []
        with pytest.raises(Conflict, match=r"site-c is in \(node 123\): take it out first"):
            await nodes.ask("site-c", key, "admin")
        with pytest.raises(Conflict, match="that key is site-c's"):
            await nodes.ask("site-d", key, "admin")
        # out: asked, refused by the SuperLink (still in, saying why), asked again, done
        assert (await nodes.remove("site-c", "admin")).state == "unregistering"
        [task] = await nodes.tasks()
        assert (task.action, task.node_id) == ("unregister", "123")
        kept = await nodes.report("site-c", NodeReport(state="failed", reason="no such node"))
        assert (kept.state, kept.reason) == ("registered", "not taken out: no such node")
        await nodes.remove("site-c", "admin")
        out = await nodes.report("site-c", NodeReport(state="unregistered"))
        assert out.state == "unregistered"
        with pytest.raises(NotFound):
            await nodes.remove("site-c", "admin")
        # a late word about an earlier request changes nothing
        assert (await nodes.report("site-c", NodeReport(state="registered"))).state == (
            "unregistered"
        )
        assert (await nodes.ask("site-c", key, "admin")).state == "registering"  # back in

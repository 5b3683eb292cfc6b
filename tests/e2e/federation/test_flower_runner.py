"""Flower runs asked at the hub's api by giftcloud's users: the runner beside the
SuperLink (the one client of its Control API) starts them with who asked, follows, cancels
and reports them, takes back a run it lost sight of, and lets the sites' SuperNodes in and
out as the hub's admin asks; each site's gate records who asked and spends each round of
learning from their budget there; the hub's page for runs."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from support.browser import Tab, launched
from support.cli import User, one_line, signed_in
from support.federated import COHORTS, PROJECT, ROSA
from support.flower import BIN, UNION, Hub, decisions, env, node_key, start
from support.infra import wait_for

pytestmark = pytest.mark.timeout(900)


def _audit(flower: dict[str, Any], site: str) -> list[dict[str, Any]]:
    return decisions(flower["sites"][site])


@pytest.fixture(scope="module")
def runner(
    flower: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The hub's runner beside the SuperLink: its admin issues and registers its credential
    (``federate add-runner``); yields rosa — a member of the project at the hub, who asks
    for runs with the giftcloud command, never touching Flower's Control API — and a way
    to kill the runner (-9) and start it again."""
    hub: Hub = flower["hub"]
    url = flower["hub_deployment"].url
    folder = tmp_path_factory.mktemp("runner")
    admin, admin_env = signed_in(folder, "admin", "admin-test-password", url)
    key = admin.run("federate", "add-runner", "--project", PROJECT, env=admin_env).stdout.strip()
    (folder / "runner.key").write_text(key)
    command: list[str | Path] = [
        BIN / "giftcloud-flower-runner",
        "--hub", url,
        "--key-file", folder / "runner.key",
        "--apps", flower["folder"] / "apps",
        "--superlink", f"127.0.0.1:{hub.port}",
        "--root-certificates", hub.ca,
        "--poll-seconds", "1",
    ]  # fmt: skip
    with ExitStack() as stack:
        running = [start(stack, command, folder / "runner.log", env(hub.home))]

        def kill_and_restart() -> None:
            running[-1].send_signal(signal.SIGKILL)
            running[-1].wait()
            running.append(start(stack, command, folder / "runner.log", env(hub.home)))

        rosa, rosa_env = signed_in(folder, *ROSA, url)
        wait_for(
            lambda: "statistics" in rosa.run("federate", "flower-apps", env=rosa_env).stdout,
            timeout=60,
            what="the runner offering its apps",
        )
        yield {"rosa": rosa, "env": rosa_env, "kill_and_restart": kill_and_restart}


def _asked(
    rosa: User, rosa_env: dict[str, str], app: str, *config: str
) -> tuple[str, dict[str, Any]]:
    """``giftcloud federate flower-run PROJECT APP --config ...`` to its end: its id and
    its result."""
    options = [word for pair in config for word in ("--config", pair)]
    done = rosa.run("federate", "flower-run", PROJECT, app, *options, env=rosa_env)
    head, state, result = done.stdout.strip().splitlines()[-3:]
    assert state == "done", done.stdout
    assert ", by rosa, Flower run " in head
    return head.split()[1], json.loads(result)


def test_a_run_asked_at_the_hub_s_api_runs_with_who_asked_in_each_site_s_audit(
    flower: dict[str, Any], runner: dict[str, Any]
) -> None:
    hub: Hub = flower["hub"]
    url = flower["hub_deployment"].url
    rosa, rosa_env = runner["rosa"], runner["env"]
    # a key the app does not take is refused at the hub, not dropped by Flower
    refused = rosa.run(
        "federate", "flower-run", PROJECT, "statistics", "--config", "bin=4",
        env=rosa_env, code=2,
    )  # fmt: skip
    assert "statistics takes no 'bin'; it takes: bins, features" in one_line(refused)
    run, result = _asked(rosa, rosa_env, "statistics", "modality=CT")
    ages = np.array([age for *_, age, _ in UNION], dtype=float)
    assert result["refused"] == {}
    assert result["pooled"]["count"] == len(UNION)
    assert result["pooled"]["mean.age"] == pytest.approx(ages.mean())
    for site in COHORTS:  # each site knows who asked, in which project and run
        mine = [a for a in _audit(flower, site) if a.get("hub_run") == run]
        assert {a["decision"] for a in mine} == {"released"}, mine
        assert all(a["asked_by"] == "rosa" and a["hub_project"] == PROJECT for a in mine)
    hub_audit = httpx.get(
        f"{url}/api/audit",
        params={"action": "api.federation.flower", "limit": 100},
        headers=flower["hub_deployment"].token(),
    ).json()
    assert {e["action"] for e in hub_audit} >= {
        "api.federation.flower.ask",
        "api.federation.flower.done",
    }
    # a run that waits for a third site is running until rosa cancels it: stopped at the
    # SuperLink, reported cancelled
    asked = rosa.run(
        "federate", "flower-run", PROJECT, "statistics", "--config", "min-sites=3",
        "--config", "timeout=180", "--wait", "5", env=rosa_env, code=2,
    )  # fmt: skip
    waiting = asked.stdout.strip().splitlines()[-1].split()[-1]

    def shown() -> str:
        return rosa.run("federate", "flower-runs", PROJECT, waiting, env=rosa_env).stdout

    wait_for(lambda: "Flower run" in shown(), timeout=60, what="the run started at the SuperLink")
    rosa.run("federate", "flower-runs", PROJECT, waiting, "--cancel", env=rosa_env)
    wait_for(lambda: shown().splitlines()[1].startswith("cancelled"), timeout=60, what="cancelled")
    flower_run = shown().split("Flower run ")[1].split()[0]
    listed = hub.flwr("ls", "hub", "--run-id", flower_run, "--format", "json")
    assert json.loads(listed.stdout)["runs"][0]["status"] == "finished:stopped"


def test_a_researcher_runs_statistics_on_the_page(
    flower: dict[str, Any], runner: dict[str, Any]
) -> None:
    """The hub's page for Flower runs in a real browser (axe clean): the apps the runner
    offers, the chosen app's settings from its defaults, a refusal's reason, the run's
    state and pooled result as they come."""
    with launched() as browser:
        tab = Tab(browser, flower["hub_deployment"].url)
        try:
            tab.sign_in(*ROSA)
            tab.go(f"/projects/{PROJECT}/federation")
            tab.page.click("text=Statistics and learning at the sites")
            tab.page.wait_for_selector("[data-flower-runs][data-loaded=true]")
            tab.page.wait_for_selector("#app option[value=statistics]", state="attached")
            tab.page.select_option("#app", "statistics")
            assert tab.page.input_value("input[data-key=bins]") == "4"  # the app's default
            tab.page.fill("input[data-key=modality]", "CT")
            assert tab.check("flower-runs") == []
            tab.page.fill("input[data-key=bins]", "4.5")
            tab.page.click("button:has-text('Run at the sites')")
            tab.page.wait_for_selector("[data-outcome]:has-text('is a whole number (default 4)')")
            tab.page.fill("input[data-key=bins]", "4")
            tab.page.click("button:has-text('Run at the sites')")
            tab.page.wait_for_selector("text=The run is done.", timeout=300000)
            shown = tab.page.locator("[data-flower-run]").first.inner_text()
            assert "statistics (" in shown and 'modality="CT"' in shown, shown
            assert "asked by rosa" in shown, shown
            assert '"count": 58' in shown, shown  # the union's CT series, pooled
            assert tab.errors == [], tab.errors
        finally:
            tab.close()


def test_a_site_s_learning_budget_is_spent_per_person_until_no_update_leaves(
    flower: dict[str, Any], runner: dict[str, Any]
) -> None:
    """Each site keeps a learning budget in its own file: every round of rosa's runs spends
    its epsilon from her budget in the site's ledger; the round that would pass it releases
    no update (the hub's FedAvg is left with nothing to move its weights)."""
    rosa, rosa_env = runner["rosa"], runner["env"]
    files = {name: flower["folder"] / name / "site.json" for name in flower["sites"]}
    kept = {name: path.read_text() for name, path in files.items()}
    # two rounds fit (noise negligible at this epsilon), a third does not
    learning = {"clipping_norm": 0.01, "epsilon": 1e6, "delta": 1e-5, "budget": 2.5e6}
    try:
        for name, path in files.items():
            settings = json.loads(kept[name])
            settings["policy"]["learning"] = learning
            path.write_text(json.dumps(settings))
        first, trained = _asked(rosa, rosa_env, "fedavg", 'modality="CT"')
        second, untrained = _asked(rosa, rosa_env, "fedavg", 'modality="CT"')
    finally:
        for name, path in files.items():
            path.write_text(kept[name])
    assert np.linalg.norm(trained["weights"]) > 0.01, trained
    assert np.allclose(untrained["weights"], 0), untrained  # nothing came to average
    for site in COHORTS:
        trail = _audit(flower, site)
        mine = [a for a in trail if a.get("hub_run") == first]
        assert {a["decision"] for a in mine} == {"released"}, mine
        spent = [a["budget"]["spent"] for a in mine]
        assert spent == [1e6, 2e6], trail[-6:]
        [withheld, *_] = [a for a in trail if a.get("hub_run") == second]
        assert withheld["decision"] == "withheld"
        assert withheld["reason"] == (
            f"the learning budget of rosa on {PROJECT} at this site would be passed:"
            " 2e+06 of 2.5e+06 spent, 1e+06 a round"
        )


def test_a_runner_killed_mid_run_follows_it_again_when_it_comes_back(
    flower: dict[str, Any], runner: dict[str, Any]
) -> None:
    """The run goes on at the SuperLink while the runner is away: the runner, killed -9 and
    started again, takes it back once its lease has run out and reports its result — not
    failed, not started twice."""
    rosa, rosa_env = runner["rosa"], runner["env"]
    hub: Hub = flower["hub"]

    def superlink_runs() -> list[str]:
        listed = hub.flwr("ls", "hub", "--format", "json")
        return [r["run-id"] for r in json.loads(listed.stdout)["runs"]]

    before = superlink_runs()
    # waits up to 45 s for a third site, then pools the two there are
    asked = rosa.run(
        "federate", "flower-run", PROJECT, "statistics", "--config", "modality=CT",
        "--config", "min-sites=3", "--config", "timeout=45", "--wait", "2",
        env=rosa_env, code=2,
    )  # fmt: skip
    run = asked.stdout.strip().splitlines()[-1].split()[-1]

    def shown() -> list[str]:
        return rosa.run("federate", "flower-runs", PROJECT, run, env=rosa_env).stdout.splitlines()

    wait_for(lambda: "Flower run" in shown()[0], timeout=60, what="the run started")
    flower_run = shown()[0].split("Flower run ")[1]
    runner["kill_and_restart"]()
    wait_for(lambda: shown()[1] in ("done", "failed"), timeout=240, what="the run ended")
    head, state, result = shown()
    assert state == "done", shown()
    assert head.endswith(f"Flower run {flower_run}")  # the same run, followed again
    assert json.loads(result)["pooled"]["count"] == len(UNION)
    assert sorted(superlink_runs()) == sorted([*before, flower_run])  # started once


def test_the_hub_s_admin_lets_a_supernode_in_and_out_through_the_runner(
    flower: dict[str, Any], runner: dict[str, Any], tmp_path: Path
) -> None:
    """A site's SuperNode key is let in at the hub's api (``federate flower-nodes``), not on
    the SuperLink's Control API: the runner registers it, and takes it out again."""
    hub: Hub = flower["hub"]
    admin, admin_env = signed_in(
        tmp_path, "admin", "admin-test-password", flower["hub_deployment"].url
    )
    _, public = node_key(tmp_path, "site-c")

    def row() -> list[str]:
        shown = admin.run("federate", "flower-nodes", env=admin_env).stdout.splitlines()
        return next((line.split() for line in shown if line.startswith("site-c ")), [])

    def at_the_superlink() -> dict[str, str]:
        listed = hub.flwr("supernode", "ls", "hub", "--format", "json")
        return {n["node-id"]: n["status"] for n in json.loads(listed.stdout)["nodes"]}

    admin.run("federate", "flower-nodes", "--add", f"site-c={public}", env=admin_env)
    wait_for(lambda: row()[1:2] == ["registered"], timeout=60, what="site-c registered")
    node_id = row()[2]
    assert at_the_superlink()[node_id] not in ("unregistered", "deleted")
    taken = admin.run(
        "federate", "flower-nodes", "--add", f"site-d={public}", env=admin_env, code=2
    )
    assert "that key is site-c's" in one_line(taken)
    rosa, rosa_env = runner["rosa"], runner["env"]  # a member, not an admin
    refused = rosa.run("federate", "flower-nodes", env=rosa_env, code=2)
    assert "admins" in one_line(refused)
    admin.run("federate", "flower-nodes", "--remove", "site-c", env=admin_env)
    wait_for(lambda: row()[1:2] == ["unregistered"], timeout=60, what="site-c unregistered")
    assert at_the_superlink()[node_id] == "unregistered"  # Flower keeps it, marked out

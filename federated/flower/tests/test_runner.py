"""The hub's runner: what it offers (the shipped apps' run configuration, giftcloud's own
keys left out), the run configuration it writes (who asked added, never taken from the
researcher), the result it reads, and how it follows a run — done, stopped when asked,
failed with the reason — against a Flower and a hub that stand in for the real ones (the
e2e test in the main suite runs it against both)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest
from flwr.app import Context, RecordDict
from giftcloud_flower.disclosure import asker
from giftcloud_flower.runner import (
    ASKED_BY,
    PROJECT,
    RUN,
    Flwr,
    Hub,
    RunnerError,
    admit,
    arguments,
    catalogue,
    follow,
    result_of,
    run_config,
)

APPS = Path(__file__).parents[1] / "apps"
TASK = {
    "id": "r-1",
    "project": "cohort",
    "app": "statistics",
    "config": {"bins": 6, "modality": 'C"T', "timeout": 30, "giftcloud-asked-by": "mallory"},
    "asked_by": "rita",
}


def test_the_catalogue_is_the_shipped_apps_with_what_a_researcher_may_set() -> None:
    offered = {app["name"]: app for app in catalogue(APPS)}
    assert set(offered) == {"statistics", "fedavg"}
    assert offered["statistics"]["config"] == {
        "features": "age,intensity",
        "bins": 4,
        "modality": "",
        "min-sites": 2,
        "timeout": 120.0,
    }
    assert offered["fedavg"]["config"]["num-rounds"] == 2
    assert "Federated statistics" in offered["statistics"]["description"]


def test_each_app_declares_the_keys_the_runner_sets_or_flower_would_drop_them() -> None:
    for app in ("statistics", "fedavg"):
        config = tomllib.loads((APPS / app / "pyproject.toml").read_text())["tool"]["flwr"]
        assert {ASKED_BY, PROJECT, RUN} <= set(config["app"]["config"]), app


def test_the_run_configuration_says_who_asked_and_the_researcher_cannot_say_otherwise() -> None:
    written = tomllib.loads(run_config(TASK))
    assert written == {
        "bins": 6,
        "modality": 'C"T',
        "timeout": 30,
        ASKED_BY: "rita",
        PROJECT: "cohort",
        RUN: "r-1",
    }


def test_the_site_s_gate_reads_who_asked_from_the_run_s_configuration() -> None:
    def context(config: dict[str, Any]) -> Context:
        return Context(run_id=1, node_id=1, node_config={}, state=RecordDict(), run_config=config)

    written = tomllib.loads(run_config(TASK))
    assert asker(context(written)) == {
        "asked_by": "rita",
        "hub_project": "cohort",
        "hub_run": "r-1",
    }
    # a run started without the runner (flwr run on the hub's network): nothing claimed
    assert asker(context({ASKED_BY: "", PROJECT: "", RUN: "", "bins": 4})) == {}


def test_the_result_is_the_server_app_s_last_result_line() -> None:
    log = 'INFO starting\nRESULT {"pooled": {"count": 1}}\nRESULT {"pooled": {"count": 2}}\nbye'
    assert result_of(log) == {"pooled": {"count": 2}}
    assert result_of("INFO nothing here") is None


class FakeFlwr:
    def __init__(
        self, statuses: list[str], log: str = 'RESULT {"n": 3}', start: Exception | None = None
    ) -> None:
        self.statuses, self.text, self.failure = statuses, log, start
        self.stopped: list[str] = []
        self.config = ""

    def start(self, app: Path, config: Path) -> str:
        if self.failure is not None:
            raise self.failure
        assert app == APPS / "statistics"
        self.config = config.read_text()
        return "18446744073709551615"  # Flower's run ids are unsigned 64-bit

    def status(self, run: str) -> str:
        return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]

    def stop(self, run: str) -> None:
        self.stopped.append(run)

    def log(self, run: str) -> str:
        return self.text

    def register(self, name: str, public_key: str) -> str:
        if "bad" in public_key:
            raise RunnerError("flwr supernode failed: the key is registered already")
        return "7"

    def unregister(self, node_id: str) -> None:
        self.stopped.append(f"node {node_id}")


class FakeHub:
    def __init__(self, cancel_after: int | None = None) -> None:
        self.reports: list[tuple[str, dict[str, Any]]] = []
        self.cancel_after = cancel_after
        self.nodes: list[tuple[str, str, dict[str, Any]]] = []

    def node(self, name: str, state: str, **more: Any) -> None:
        self.nodes.append((name, state, more))

    def report(self, run: str, state: str, **more: Any) -> bool:
        self.reports.append((state, more))
        return self.cancel_after is not None and len(self.reports) > self.cancel_after


def test_a_run_is_reported_while_it_runs_then_done_with_its_result() -> None:
    flwr, hub = FakeFlwr(["running", "running", "finished:completed"]), FakeHub()
    follow(TASK, APPS, flwr, hub, every=0)  # type: ignore[arg-type]
    # once started, then at each look while Flower says running
    assert [state for state, _ in hub.reports] == ["running", "running", "running", "done"]
    assert hub.reports[-1][1] == {"flower_run": "18446744073709551615", "result": {"n": 3}}
    assert 'giftcloud-asked-by = "rita"' in flwr.config


def test_a_run_its_researcher_cancels_is_stopped_at_the_superlink() -> None:
    flwr = FakeFlwr(["running", "running", "running", "finished:stopped"])
    hub = FakeHub(cancel_after=0)
    follow(TASK, APPS, flwr, hub, every=0)  # type: ignore[arg-type]
    assert flwr.stopped == ["18446744073709551615"]  # asked once, though it took a while
    assert flwr.stopped
    assert hub.reports[-1][0] == "cancelled"


def test_a_run_that_fails_or_gives_no_result_is_failed_with_the_reason() -> None:
    hub = FakeHub()
    follow(TASK, APPS, FakeFlwr(["finished:failed"], log="Traceback"), hub, every=0)  # type: ignore[arg-type]
    assert hub.reports[-1][0] == "failed"
    assert "no RESULT (finished:failed)" in hub.reports[-1][1]["reason"]
    hub = FakeHub()
    refused = FakeFlwr([], start=RunnerError("flwr run failed: connection refused"))
    follow(TASK, APPS, refused, hub, every=0)  # type: ignore[arg-type]
    assert hub.reports == [("failed", {"reason": "flwr run failed: connection refused"})]
    hub = FakeHub()
    follow({**TASK, "app": "nothing"}, APPS, FakeFlwr(["running"]), hub)  # type: ignore[arg-type]
    assert hub.reports == [("failed", {"reason": "this hub's runner has no app 'nothing'"})]


def test_a_run_started_before_the_runner_stopped_is_followed_not_started_again() -> None:
    flwr = FakeFlwr(["running", "finished:completed"], start=AssertionError("started again"))
    hub = FakeHub()
    follow({**TASK, "flower_run": "42"}, APPS, flwr, hub, every=0)  # type: ignore[arg-type]
    assert hub.reports[0] == ("running", {"flower_run": "42"})
    assert hub.reports[-1] == ("done", {"flower_run": "42", "result": {"n": 3}})


def test_losing_the_superlink_mid_run_fails_the_run_saying_why() -> None:
    class Lost(FakeFlwr):
        def status(self, run: str) -> str:
            raise RunnerError("flwr ls failed: the SuperLink is away")

    hub = FakeHub()
    with pytest.raises(RunnerError):
        follow(TASK, APPS, Lost(["running"]), hub, every=0)  # type: ignore[arg-type]
    assert hub.reports[-1] == ("failed", {"reason": "flwr ls failed: the SuperLink is away"})


def test_the_command_line_needs_the_hub_its_key_and_the_apps() -> None:
    with pytest.raises(SystemExit):
        arguments().parse_args(["--hub", "https://hub"])
    args = arguments().parse_args(
        ["--hub", "h", "--key-file", "k", "--apps", "a", "--root-certificates", "ca.pem"]
    )
    assert args.superlink == "127.0.0.1:9092"
    assert args.poll_seconds == 3.0


def test_flwr_is_pointed_at_the_superlink_from_a_home_of_the_runner_s_own() -> None:
    flwr = Flwr("localhost:9092", "/etc/flower/ca/ca.crt")
    config = tomllib.loads((Path(flwr.home) / "config.toml").read_text())
    assert config["superlink"] == {
        "default": "giftcloud",
        "giftcloud": {"address": "localhost:9092", "root-certificates": "/etc/flower/ca/ca.crt"},
    }


def test_the_supernodes_asked_for_are_let_in_and_out_and_a_refusal_is_the_node_s() -> None:
    flwr, hub = FakeFlwr(["running"]), FakeHub()
    admit(
        [
            {"name": "site-c", "action": "register", "public_key": "ecdsa good", "node_id": None},
            {"name": "site-d", "action": "register", "public_key": "ecdsa bad", "node_id": None},
            {"name": "site-e", "action": "unregister", "public_key": "ecdsa x", "node_id": "9"},
        ],
        flwr,  # type: ignore[arg-type]
        hub,  # type: ignore[arg-type]
    )
    assert hub.nodes == [
        ("site-c", "registered", {"node_id": "7"}),
        ("site-d", "failed", {"reason": "flwr supernode failed: the key is registered already"}),
        ("site-e", "unregistered", {}),
    ]
    assert flwr.stopped == ["node 9"]


def test_the_hub_s_answers_as_the_runner_reads_them() -> None:
    """A report answered 204 (a node's) is nothing to read; a refusal is one RunnerError."""

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Bearer gck_k_s"
        if request.url.path.endswith("/nodes/site-c"):
            return httpx.Response(204)
        if request.url.path.endswith("/claim"):
            return httpx.Response(200, json={"run": None, "nodes": []})
        return httpx.Response(403, json={"detail": "only the hub's registered Flower runner"})

    hub = Hub("http://hub", "gck_k_s", transport=httpx.MockTransport(answer))
    hub.node("site-c", "registered", node_id="7")
    assert hub.claim([]) == {"run": None, "nodes": []}
    with pytest.raises(RunnerError, match="answered 403"):
        hub.report("r-1", "running")

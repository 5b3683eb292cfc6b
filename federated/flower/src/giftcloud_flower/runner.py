"""The hub's Flower runner, ``giftcloud-flower-runner``: beside the SuperLink, the one
client of its Control API. It lets in (and out) the sites' SuperNodes the hub's admin asked
for, by their keys. It asks the hub's api for runs people asked for, starts each
with ``flwr run`` — who asked, the hub's project and the run's id added to its run
configuration, so each site's audit trail records them — follows it, stops it when its
researcher cancels, and reports its state and the ServerApp's ``RESULT`` (the pooled,
released values) back to the api. A run at a time.

    giftcloud-flower-runner --hub http://api --key-file /run/secrets/flower-runner/key \\
        --apps /opt/giftcloud/apps --superlink localhost:9092 --root-certificates ca.pem
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

#: run configuration keys the runner sets (the apps declare them, so Flower keeps them)
ASKED_BY, PROJECT, RUN = "giftcloud-asked-by", "giftcloud-project", "giftcloud-run"
RESERVED = "giftcloud-"
#: the ServerApp's result: one line of its log
RESULT = "RESULT "
FINISHED = "finished:"


class RunnerError(Exception):
    """Something the runner cannot do, with the reason (for the run's researcher)."""


def catalogue(apps: Path) -> list[dict[str, Any]]:
    """The apps in ``apps`` (a folder each, with Flower's ``pyproject.toml``): name,
    description and the run configuration a researcher may set (giftcloud's own keys left
    out)."""
    found = []
    for folder in sorted(p for p in apps.iterdir() if (p / "pyproject.toml").is_file()):
        project = tomllib.loads((folder / "pyproject.toml").read_text())
        flwr = project.get("tool", {}).get("flwr", {}).get("app")
        if flwr is None:
            continue
        config = {k: v for k, v in flwr.get("config", {}).items() if not k.startswith(RESERVED)}
        description = str(project.get("project", {}).get("description", ""))[:500]
        found.append({"name": folder.name, "description": description, "config": config})
    return found


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))  # a TOML basic string: JSON's escapes are TOML's


def run_config(task: dict[str, Any]) -> str:
    """The run's configuration as TOML: the researcher's keys, then who asked and where."""
    config = {k: v for k, v in task["config"].items() if not k.startswith(RESERVED)}
    config |= {ASKED_BY: task["asked_by"], PROJECT: task["project"], RUN: task["id"]}
    return "".join(f"{key} = {_toml(value)}\n" for key, value in config.items())


def result_of(log: str) -> dict[str, Any] | None:
    """The ServerApp's ``RESULT {json}`` line, the last one in its log."""
    found = None
    for line in log.splitlines():
        if line.startswith(RESULT):
            found = json.loads(line.removeprefix(RESULT))
    return found


@dataclass
class Flwr:
    """``flwr`` against the SuperLink at ``address`` (TLS, checked with ``root_certificates``),
    from a Flower home of the runner's own."""

    address: str
    root_certificates: str
    program: str = "flwr"
    timeout: float = 300.0
    #: the connection's name in that home's config.toml
    connection: str = "giftcloud"

    def __post_init__(self) -> None:
        self.home = tempfile.mkdtemp(prefix="giftcloud-flower-runner-")
        Path(self.home, "config.toml").write_text(
            f'[superlink]\ndefault = "{self.connection}"\n\n[superlink.{self.connection}]\n'
            f"address = {_toml(self.address)}\nroot-certificates = {_toml(self.root_certificates)}\n"
        )

    def _call(self, *args: str) -> str:
        done = subprocess.run(
            [self.program, *args],
            capture_output=True,
            text=True,
            timeout=self.timeout,
            env={**os.environ, "FLWR_HOME": self.home},
        )
        if done.returncode != 0:
            last = (done.stdout + done.stderr).strip().splitlines()[-1:] or ["no output"]
            raise RunnerError(f"flwr {args[0]} failed: {last[0][:300]}")
        return done.stdout

    def _json(self, *args: str) -> dict[str, Any]:
        answer: dict[str, Any] = json.loads(self._call(*args, "--format", "json"))
        if not answer.get("success"):
            raise RunnerError(f"flwr {args[0]}: {answer.get('error-message', answer)}")
        return answer

    def start(self, app: Path, config: Path) -> str:
        started = self._json("run", str(app), self.connection, "--run-config", str(config))
        return str(started["run-id"])

    def status(self, run: str) -> str:
        runs = self._json("ls", self.connection, "--run-id", run)["runs"]
        return str(runs[0]["status"]) if runs else "unknown"

    def stop(self, run: str) -> None:
        self._call("stop", run, self.connection)

    def log(self, run: str) -> str:
        return self._call("log", run, self.connection, "--show")

    def register(self, name: str, public_key: str) -> str:
        """A SuperNode's key let in at the SuperLink: the node's id."""
        with tempfile.TemporaryDirectory() as folder:
            key = Path(folder) / f"{name}.pub"
            key.write_text(public_key + "\n")
            done = self._json("supernode", "register", str(key), self.connection, "--name", name)
        return str(done["node-id"])

    def unregister(self, node_id: str) -> None:
        self._call("supernode", "unregister", node_id, self.connection)


class Hub:
    """The hub's api, as the runner uses it (its registered credential)."""

    def __init__(
        self,
        url: str,
        key: str,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.client = httpx.Client(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Bearer {key}"},
            timeout=timeout,
            transport=transport,
        )

    def _call(self, method: str, path: str, body: object) -> Any:
        try:
            answer = self.client.request(method, path, json=body)
        except httpx.HTTPError as error:
            raise RunnerError(f"the hub's api cannot be reached: {error}") from error
        if answer.status_code >= 400:
            raise RunnerError(f"the hub's api answered {answer.status_code}: {answer.text[:300]}")
        if not answer.content:  # 204: nothing to say
            return None
        try:
            return answer.json()
        except ValueError as error:
            raise RunnerError(f"the hub's api answered what is not JSON: {error}") from error

    def claim(self, apps: list[dict[str, Any]]) -> dict[str, Any]:
        """The run to start or follow (``run``, or None) and the SuperNodes to let in or out
        (``nodes``)."""
        found: dict[str, Any] = self._call(
            "POST", "/api/federation/flower/runner/claim", {"apps": apps}
        )
        return found

    def node(self, name: str, state: str, **more: Any) -> None:
        self._call("PUT", f"/api/federation/flower/runner/nodes/{name}", {"state": state, **more})

    def report(self, run: str, state: str, **more: Any) -> bool:
        """Tell the hub; True when the run's researcher asked to stop it."""
        answer = self._call(
            "PUT", f"/api/federation/flower/runner/runs/{run}", {"state": state, **more}
        )
        return bool(answer["cancel"])


def admit(nodes: list[dict[str, Any]], flwr: Flwr, hub: Hub) -> None:
    """Let the SuperNodes the hub's admin asked for in, or out, and say what the SuperLink
    said (a refusal is the node's, and the next ones are still done)."""
    for node in nodes:
        name = str(node["name"])
        try:
            if node["action"] == "register":
                registered = flwr.register(name, str(node["public_key"]))
            else:
                flwr.unregister(str(node["node_id"]))
        except RunnerError as error:
            hub.node(name, "failed", reason=str(error))
            continue
        if node["action"] == "register":
            hub.node(name, "registered", node_id=registered)
        else:
            hub.node(name, "unregistered")


def follow(task: dict[str, Any], apps: Path, flwr: Flwr, hub: Hub, every: float = 3.0) -> None:
    """Start the task's run, report it while it runs (stopping it if its researcher asks),
    then report how it ended: done with its result, failed or cancelled with the reason. A
    run the runner loses sight of (the SuperLink away) is reported failed, saying why."""
    try:
        _follow(task, apps, flwr, hub, every)
    except RunnerError as error:
        with contextlib.suppress(RunnerError):  # the hub away too: the lease runs out there
            hub.report(task["id"], "failed", reason=str(error))
        raise


def _follow(task: dict[str, Any], apps: Path, flwr: Flwr, hub: Hub, every: float) -> None:
    app = apps / task["app"]
    if not (app / "pyproject.toml").is_file():
        hub.report(task["id"], "failed", reason=f"this hub's runner has no app {task['app']!r}")
        return
    run = task.get("flower_run")  # started before this runner stopped: followed again
    if run is None:
        with tempfile.TemporaryDirectory() as folder:
            config = Path(folder) / "run-config.toml"
            config.write_text(run_config(task))
            try:
                run = flwr.start(app, config)
            except RunnerError as error:
                hub.report(task["id"], "failed", reason=str(error))
                return
    cancelled = hub.report(task["id"], "running", flower_run=run)
    status, stopped = flwr.status(run), False
    while not status.startswith(FINISHED):
        if cancelled and not stopped:  # asked once: the SuperLink stops it in its own time
            flwr.stop(run)
            stopped = True
        time.sleep(every)
        cancelled = hub.report(task["id"], "running", flower_run=run) or cancelled
        status = flwr.status(run)
    log = flwr.log(run)
    result = result_of(log)
    if status == f"{FINISHED}completed" and result is not None:
        hub.report(task["id"], "done", flower_run=run, result=result)
    elif status == f"{FINISHED}stopped" or cancelled:
        hub.report(task["id"], "cancelled", flower_run=run, reason="stopped, as asked")
    else:
        why = "the ServerApp gave no RESULT" if result is None else "the run failed"
        hub.report(task["id"], "failed", flower_run=run, reason=f"{why} ({status})")


def serve_health(address: str) -> Callable[[], None]:
    """gRPC health at ``address`` (the deployment's probes), SERVING while the runner runs."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_insecure_port(address)
    server.start()

    def stop() -> None:
        server.stop(grace=None)

    return stop


def arguments() -> argparse.ArgumentParser:
    """The runner's command line (also read by the deployment tests)."""
    parser = argparse.ArgumentParser(
        prog="giftcloud-flower-runner",
        description="Start the Flower runs people ask the hub's api for, and report them.",
    )
    parser.add_argument("--hub", required=True, help="the hub's api, e.g. https://hub.example.org")
    parser.add_argument("--key-file", required=True, help="the runner's registered credential")
    parser.add_argument("--apps", required=True, help="a folder of the apps it offers")
    parser.add_argument(
        "--superlink", default="127.0.0.1:9092", help="the SuperLink's address (host:port)"
    )
    parser.add_argument(
        "--root-certificates", required=True, help="the CA that signed the SuperLink's certificate"
    )
    parser.add_argument("--poll-seconds", type=float, default=3.0)
    parser.add_argument("--health-server-address", help="serve gRPC health (no TLS) here")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = arguments().parse_args(argv)
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")  # Flower phones home otherwise
    os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")
    apps = Path(args.apps)
    try:
        key = Path(args.key_file).read_text().strip()
        offered = catalogue(apps)
        Path(args.root_certificates).read_bytes()  # checked now, not at the first run
    except OSError as error:
        sys.exit(f"giftcloud-flower-runner: {error}")
    hub, flwr = Hub(args.hub, key), Flwr(args.superlink, args.root_certificates)
    stop = serve_health(args.health_server_address) if args.health_server_address else None
    names = ", ".join(a["name"] for a in offered) or "none"
    print(f"giftcloud-flower-runner: offering {names} to {args.hub}", file=sys.stderr, flush=True)
    try:
        while True:
            try:
                claimed = hub.claim(offered)
                admit(claimed["nodes"], flwr, hub)
                if claimed["run"] is not None:
                    follow(claimed["run"], apps, flwr, hub, args.poll_seconds)
                    continue
            except RunnerError as error:  # the hub away, flwr failing: said, and tried again
                print(f"giftcloud-flower-runner: {error}", file=sys.stderr, flush=True)
            time.sleep(args.poll_seconds)
    except KeyboardInterrupt:
        pass
    finally:
        if stop is not None:
            stop()


if __name__ == "__main__":
    main()

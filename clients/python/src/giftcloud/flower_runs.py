"""``giftcloud federate add-runner|flower-nodes|flower-apps|flower-run|flower-runs`` at a
hub: its admin issues the Flower runner its credential and lets the sites' SuperNodes in;
people who may read a project run an app of the runner's catalogue across the sites and
follow it — each site's audit trail records who asked."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from giftcloud.commands import session_for, table
from giftcloud.federated_jobs import parameter
from giftcloud.session import DONE, REFUSED, TROUBLE, CommandError, undone_on_failure

#: states a run does not leave
ENDED = {"done", "failed", "cancelled"}


def add_runner(args: argparse.Namespace) -> int:
    """At a hub (admins): a machine credential for the Flower runner, with the collaborator
    role on the projects it serves, registered as the runner (replacing any before); prints
    the key for its --key-file (shown once). Taken back if it cannot be registered."""
    session = session_for(args)
    grants = [{"project": project, "role": "collaborator"} for project in args.project]
    made = session.request(
        "POST",
        "/auth/clients",
        "issuing the runner's credential",
        json={"name": args.name, "grants": grants},
    ).json()
    with undone_on_failure(session, f"/auth/clients/{made['client_id']}", "taking it back"):
        session.request(
            "PUT",
            "/api/federation/flower/runner",
            "registering the runner",
            json={"client_id": made["client_id"]},
        )
    print(made["key"])
    return DONE


def apps(args: argparse.Namespace) -> int:
    """The apps the hub's runner offers, the run configuration each takes (with its
    default), and when the runner last called."""
    runner = session_for(args).get("/api/federation/flower/runner", "reading the runner").json()
    seen = (runner["seen_at"] or "never")[:19].replace("T", " ")
    print(
        f"runner {runner['client_id']}, last called {seen}; serves {', '.join(runner['projects']) or 'no project'}"
    )
    table(
        [
            [
                a["name"],
                ", ".join(f"{k}={json.dumps(v)}" for k, v in a["config"].items()),
                a["description"],
            ]
            for a in runner["apps"]
        ],
        ["APP", "CONFIGURATION (DEFAULTS)", "WHAT IT DOES"],
        empty="the runner offers no app yet (is it running?)",
    )
    return DONE


def run(args: argparse.Namespace) -> int:
    """PROJECT APP: run APP across the sites with --config KEY=VALUE; follow it until it
    ends (or --wait runs out); its state and the pooled result."""
    session = session_for(args)
    body = {"app": args.app, "config": dict(parameter(c, "--config") for c in args.config or [])}
    base = f"/api/projects/{quote(args.project)}/federation/flower/runs"
    found = session.request("POST", base, f"asking for a {args.app} run", json=body).json()
    deadline = time.monotonic() + args.wait
    while found["state"] not in ENDED and time.monotonic() < deadline:
        time.sleep(1.0)
        found = session.get(f"{base}/{found['id']}", "reading the run").json()
    show(found)
    if found["state"] not in ENDED:
        print(
            f"still {found['state']}: giftcloud federate flower-runs {args.project} {found['id']}"
        )
        return TROUBLE
    return DONE if found["state"] == "done" else REFUSED


def show(found: dict[str, Any]) -> None:
    at = f", Flower run {found['flower_run']}" if found["flower_run"] else ""
    print(f"run {found['id']} on {found['project']}: {found['app']}, by {found['asked_by']}{at}")
    print(f"{found['state']}" + (f": {found['reason']}" if found["reason"] else ""))
    if found["result"] is not None:
        print(json.dumps(found["result"], sort_keys=True))


def runs(args: argparse.Namespace) -> int:
    """PROJECT [RUN]: the project's Flower runs, or one in full; --cancel stops it."""
    session = session_for(args)
    base = f"/api/projects/{quote(args.project)}/federation/flower/runs"
    if args.cancel and not args.run_id:
        raise CommandError("--cancel takes the RUN it stops", TROUBLE)
    if args.run_id:
        path = f"{base}/{quote(args.run_id)}"
        if args.cancel:
            show(session.request("POST", f"{path}/cancel", "cancelling the run").json())
        else:
            show(session.get(path, "reading the run").json())
        return DONE
    table(
        [
            [r["id"], r["app"], r["asked_by"], r["asked_at"][:19].replace("T", " "), r["state"]]
            for r in session.get(base, "listing the runs").json()
        ],
        ["RUN", "APP", "ASKED BY", "ASKED (UTC)", "STATE"],
        empty=f"no Flower run on {args.project}",
    )
    return DONE


def nodes(args: argparse.Namespace) -> int:
    """At a hub (admins): the sites' SuperNodes let in; --add NAME=KEYFILE lets one in by its
    public key, --remove NAME takes it out (the runner does it at the SuperLink)."""
    session = session_for(args)
    if args.add:
        name, _, path = args.add.partition("=")
        try:
            key = Path(path).read_text()
        except OSError as error:
            raise CommandError(f"--add {args.add}: {error.strerror or error}", TROUBLE) from None
        session.request(
            "PUT", f"/api/federation/flower/nodes/{quote(name)}", f"adding {name}",
            json={"public_key": key},
        )  # fmt: skip
    if args.remove:
        session.request(
            "DELETE", f"/api/federation/flower/nodes/{quote(args.remove)}", "taking it out"
        )
    table(
        [
            [n["name"], n["state"], n["node_id"] or "-", n["asked_by"], n["reason"] or "-"]
            for n in session.get("/api/federation/flower/nodes", "listing them").json()
        ],
        ["SUPERNODE", "STATE", "NODE ID", "ASKED BY", "WHY"],
        empty="no SuperNode asked for",
    )
    return DONE


def wire(federate: Callable[..., argparse.ArgumentParser]) -> None:
    adding = federate(
        "add-runner",
        "at a hub (admins): issue the Flower runner its credential and register it; prints"
        " the key (shown once)",
        add_runner,
    )
    adding.add_argument(
        "--project", action="append", required=True, help="a project it serves (repeat)"
    )
    adding.add_argument("--name", default="flower-runner", help="the credential's name")
    federate("flower-apps", "at a hub: the Flower apps its runner offers", apps)
    admitting = federate("flower-nodes", "at a hub (admins): the sites' SuperNodes let in", nodes)
    admitting.add_argument("--add", metavar="NAME=KEYFILE", help="a SuperNode's public key")
    admitting.add_argument("--remove", metavar="NAME")
    running = federate("flower-run", "at a hub: run a Flower app across the sites", run)
    running.add_argument("project", help="the project, at the hub")
    running.add_argument("app", help="an app the runner offers (federate flower-apps)")
    running.add_argument("--config", action="append", metavar="KEY=VALUE", help="run configuration")
    running.add_argument("--wait", type=float, default=600, help="seconds to follow it")
    listing = federate("flower-runs", "at a hub: the project's Flower runs, or one", runs)
    listing.add_argument("project")
    listing.add_argument("run_id", metavar="RUN", nargs="?")
    listing.add_argument("--cancel", action="store_true", help="stop the RUN")

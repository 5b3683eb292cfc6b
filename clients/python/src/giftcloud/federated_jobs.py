"""``giftcloud federate job|jobs|cancel|retry`` at a hub: run an algorithm at the sites
and follow each site's part; ``giftcloud federate algorithms|review`` at a site: its admin
approves algorithms by digest, its steward releases or withholds what a job gave."""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from giftcloud.commands import session_for, table
from giftcloud.federate import predicate
from giftcloud.session import DONE, TROUBLE, CommandError

#: a part that will not change unless someone acts (a steward, a retry)
SETTLED = {"done", "withheld", "refused", "failed", "cancelled", "awaiting_release", "waiting"}


def parameter(text: str, option: str = "--param") -> tuple[str, Any]:
    """NAME=VALUE, the value read as JSON (else as text)."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise CommandError(
            f"{option} {text!r}: write NAME=VALUE (the value as JSON or text)", TROUBLE
        )
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


def submit(args: argparse.Namespace) -> int:
    """PROJECT: run ALGORITHM at the sites over the series --where chooses at each; wait
    until every part is settled; each site's state, reason and released output."""
    session = session_for(args)
    body: dict[str, Any] = {
        "algorithm": args.algorithm,
        "criteria": [predicate(w) for w in args.where or []],
        "parameters": dict(parameter(p) for p in args.param or []),
    }
    if args.digest:
        body["digest"] = args.digest
    if args.site:
        body["sites"] = args.site
    if args.standing:
        body["standing"] = True
    if args.question:
        body["question"] = args.question
    base = f"/api/projects/{quote(args.project)}/federation/jobs"
    job = session.request("POST", base, f"submitting to {args.project}'s sites", json=body).json()
    show(_follow(session, base, job, args.wait))
    return DONE


def _follow(session: Any, base: str, job: dict[str, Any], wait: float) -> dict[str, Any]:
    deadline = time.monotonic() + wait
    while any(p["state"] not in SETTLED for p in job["parts"]) and time.monotonic() < deadline:
        time.sleep(0.5)
        job = session.get(f"{base}/{job['id']}", "reading the job").json()
    return job


def show(job: dict[str, Any]) -> None:
    print(f"job {job['id']} on {job['project']}: {job['algorithm']}, by {job['submitted_by']}")
    table(
        [[p["site"], p["state"], str(p["attempt"]), p["reason"] or "-"] for p in job["parts"]],
        ["SITE", "STATE", "ATTEMPT", "WHY"],
    )
    for part in job["parts"]:
        if part["output"]:
            print(f"{part['site']}: {json.dumps(part['output'], sort_keys=True)}")


def jobs(args: argparse.Namespace) -> int:
    """PROJECT [JOB]: the project's jobs with each site's state, or one job in full."""
    session = session_for(args)
    base = f"/api/projects/{quote(args.project)}/federation/jobs"
    if args.job:
        show(session.get(f"{base}/{quote(args.job)}", "reading the job").json())
        return DONE
    found = session.get(base, "listing the jobs").json()
    table(
        [
            [
                j["id"],
                j["algorithm"],
                j["submitted_at"][:19].replace("T", " "),
                ", ".join(f"{p['site']} {p['state']}" for p in j["parts"]),
            ]
            for j in found
        ],
        ["JOB", "ALGORITHM", "SUBMITTED (UTC)", "SITES"],
        empty=f"no job on {args.project}",
    )
    return DONE


def act(args: argparse.Namespace) -> int:
    """PROJECT JOB: cancel, or retry the parts that did not end done (--site: one site's)."""
    session = session_for(args)
    path = f"/api/projects/{quote(args.project)}/federation/jobs/{quote(args.job)}/{args.action}"
    params = {"site": args.site} if args.site else {}
    show(session.request("POST", path, f"asking to {args.action}", params=params).json())
    return DONE


def algorithms(args: argparse.Namespace) -> int:
    """At a site (admins): the algorithms installed, their digests, and which are approved;
    --approve NAME=DIGEST approves the code you reviewed, --revoke NAME takes it back."""
    session = session_for(args)
    if args.approve:
        name, _, digest = args.approve.partition("=")
        session.request(
            "PUT",
            f"/api/federation/algorithms/{quote(name)}",
            f"approving {name}",
            json={"digest": digest},
        )
    if args.revoke:
        session.request(
            "DELETE", f"/api/federation/algorithms/{quote(args.revoke)}", f"revoking {args.revoke}"
        )
    found = session.get("/api/federation/algorithms", "listing the algorithms").json()
    table(
        [
            [
                a["name"],
                a["digest"],
                "yes"
                if a["approved"] == a["digest"]
                else "CHANGED since approved"
                if a["approved"]
                else "no",
                a["summary"],
            ]
            for a in found
        ],
        ["ALGORITHM", "DIGEST (SHA-256 OF ITS CODE)", "APPROVED", "WHAT IT DOES"],
    )
    return DONE


def flower(args: argparse.Namespace) -> int:
    """At a site (admins): the Flower apps approved, by the SHA-256 of their bundle (FAB);
    --approve NAME=DIGEST approves the bundle you reviewed, --revoke DIGEST takes it back.
    The site's gate asks before every run: a revoked app is refused at once. --gate KEY_ID
    registers the API key the gate reports its decisions with (no other key may)."""
    if args.approve:
        name, _, digest = args.approve.partition("=")
        if not name or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise CommandError(
                "--approve takes NAME=DIGEST, the digest the SHA-256 of the FAB (64 hex,"
                " `sha256sum` of what `flwr build` made)",
                TROUBLE,
            )
    session = session_for(args)
    if args.approve:
        session.request(
            "PUT", f"/api/federation/flower/apps/{digest}", f"approving {name}", json={"name": name}
        )
    if args.revoke:
        session.request(
            "DELETE", f"/api/federation/flower/apps/{quote(args.revoke)}", "revoking it"
        )
    if args.gate:
        session.request(
            "PUT",
            "/api/federation/flower/gate",
            "registering the gate",
            json={"client_id": args.gate},
        )
    gate = session.http.get("/api/federation/flower/gate")
    if gate.status_code == 404:
        print("gate: none registered (--gate KEY_ID: the key of the gate's site file)")
    else:
        print(f"gate: key {session.check(gate, 'reading the gate').json()['client_id']}")
    found = session.get("/api/federation/flower/apps", "listing the Flower apps").json()
    table(
        [[a["name"], a["digest"], a["approved_by"], a["approved_at"][:19]] for a in found],
        ["APP", "DIGEST (SHA-256 OF ITS FAB)", "APPROVED BY", "AT (UTC)"],
    )
    return DONE


def review(args: argparse.Namespace) -> int:
    """At a site (its steward): the outputs awaiting release; JOB --release or --withhold
    REASON decides one."""
    if not args.job and (args.release is not None or args.withhold is not None):
        raise CommandError("--release and --withhold take the JOB they decide", TROUBLE)
    session = session_for(args)
    if args.job:
        if args.release is None and args.withhold is None:
            found = session.get(f"/api/federation/jobs/{quote(args.job)}", "reading the job").json()
            print(json.dumps(found, indent=2, sort_keys=True))
            return DONE
        decision = {"release": args.withhold is None, "reason": args.withhold or args.release or ""}
        found = session.request(
            "POST", f"/api/federation/jobs/{quote(args.job)}/decision", "deciding", json=decision
        ).json()
        print(f"job {found['id']}: {found['state']} ({found['reason']})")
        return DONE
    held = session.get(
        "/api/federation/jobs", "listing the held outputs", params={"state": "awaiting_release"}
    ).json()
    if not held:
        print("nothing awaits release")
        return DONE
    table(
        [
            [
                j["id"],
                j["project"],
                j["algorithm"],
                j["submitted_by"],
                str(j["series"]),
                j["reason"],
            ]
            for j in held
        ],
        ["JOB", "PROJECT", "ALGORITHM", "ASKED BY (AT THE HUB)", "SERIES", "WHY HELD"],
    )
    return DONE


def wire(federate: Callable[..., argparse.ArgumentParser]) -> None:
    running = federate("job", "at a hub: run an approved algorithm at the sites", submit)
    running.add_argument("project", help="the project, at the hub")
    running.add_argument("algorithm", help="an algorithm the sites approved (federate sites)")
    running.add_argument(
        "--where", action="append", metavar="EXPR", help="the cohort, as for count"
    )
    running.add_argument(
        "--question", metavar="ID", help="the cohort: what each site counted for a question"
    )
    running.add_argument("--param", action="append", metavar="NAME=VALUE", help="a parameter")
    running.add_argument("--digest", help="the SHA-256 of the code you mean")
    running.add_argument("--site", action="append", metavar="NAME", help="only these sites")
    running.add_argument(
        "--standing", action="store_true", help="run again on every new series that matches"
    )
    running.add_argument("--wait", type=float, default=300, help="seconds to follow it")
    listing = federate("jobs", "at a hub: the project's jobs, or one in full", jobs)
    listing.add_argument("project")
    listing.add_argument("job", nargs="?")
    for action in ("cancel", "retry"):
        acting = federate(action, f"at a hub: {action} a job (--site: at one site)", act)
        acting.add_argument("project")
        acting.add_argument("job")
        acting.add_argument("--site")
        acting.set_defaults(action=action)
    approving = federate(
        "algorithms", "at a site (admins): the algorithms and approvals", algorithms
    )
    approving.add_argument("--approve", metavar="NAME=DIGEST", help="approve the code you reviewed")
    approving.add_argument("--revoke", metavar="NAME")
    flowering = federate("flower", "at a site (admins): the Flower apps approved", flower)
    flowering.add_argument("--approve", metavar="NAME=DIGEST", help="approve the FAB you reviewed")
    flowering.add_argument("--revoke", metavar="DIGEST")
    flowering.add_argument(
        "--gate", metavar="KEY_ID", help="register the API key the site's gate reports with"
    )
    reviewing = federate("review", "at a site (its steward): outputs awaiting release", review)
    reviewing.add_argument("job", nargs="?")
    decision = reviewing.add_mutually_exclusive_group()
    decision.add_argument("--release", nargs="?", const="", metavar="NOTE", help="release it")
    decision.add_argument("--withhold", metavar="REASON", help="withhold it, saying why")

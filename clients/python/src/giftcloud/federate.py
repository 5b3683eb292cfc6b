"""``giftcloud federate``: ask a hub's sites a count (each answers under its own disclosure
policy, and only what it released comes back), list the sites, set a site's policy."""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from giftcloud.commands import session_for, table
from giftcloud.session import DONE, REFUSED, TROUBLE, CommandError, undone_on_failure

#: attribute, operator and value of one --where: modality=CT,MR  age_at_study>=40
#: age_at_study=40..70  study_description~=brain
_WHERE = re.compile(r"^([a-z_]+)\s*(>=|<=|~=|=)\s*(.+)$")


def predicate(text: str) -> dict[str, Any]:
    found = _WHERE.match(text.strip())
    if found is None:
        raise CommandError(
            f"--where {text!r}: write ATTRIBUTE=VALUE, =V1,V2, =LOW..HIGH, >=, <= or ~= (contains)",
            TROUBLE,
        )
    name, op, value = found.groups()
    if op == "~=":
        return {"attribute": name, "op": "contains", "value": value}
    if op in (">=", "<="):
        return {"attribute": name, "op": "gte" if op == ">=" else "lte", "value": value}
    if ".." in value:
        return {"attribute": name, "op": "between", "value": value.split("..", 1)}
    if "," in value:
        return {"attribute": name, "op": "in", "value": value.split(",")}
    return {"attribute": name, "op": "eq", "value": value}


def count(args: argparse.Namespace) -> int:
    """PROJECT: ask the sites; wait for their answers; each site's released cells and the
    pooled ones (only released cells are summed)."""
    session = session_for(args)
    body: dict[str, Any] = {
        "criteria": [predicate(w) for w in args.where or []],
        "group_by": args.by or [],
        "unit": args.unit,
    }
    for name in ("epsilon", "k"):
        if getattr(args, name) is not None:
            body[name] = getattr(args, name)
    if args.site:
        body["sites"] = args.site
    base = f"/api/projects/{quote(args.project)}/federation/counts"
    asked = session.request("POST", base, f"asking {args.project}'s sites", json=body).json()
    deadline = time.monotonic() + args.wait
    while any(p["state"] == "pending" for p in asked["parts"]) and time.monotonic() < deadline:
        time.sleep(0.5)
        asked = session.get(f"{base}/{asked['id']}", "reading the answers").json()
    show(asked)
    return DONE


def show(asked: dict[str, Any]) -> None:
    keys = [tuple(c["key"]) for c in asked["pooled"]["cells"]]
    label = [" / ".join(key) or "count" for key in keys]
    rows = []
    for part in asked["parts"]:
        answer = part["answer"] or {}
        cells = {tuple(c["key"]): c["count"] for c in answer.get("cells", [])}
        k = answer.get("k")
        shown = [_count(cells, key, k) for key in keys]
        total = answer.get("total")
        why = (
            part["reason"]
            if part["state"] != "answered"
            else f"k={k}" + (f", epsilon {answer['epsilon']:g}" if answer.get("epsilon") else "")
        )
        rows.append([part["site"], part["state"], *shown, _total(total, part["state"], k), why])
    pooled = asked["pooled"]
    rows.append(
        [
            "pooled",
            f"{len(pooled['sites'])} site(s)",
            *[f"{c['count']}{'+' if c['partial'] else ''}" for c in pooled["cells"]],
            str(pooled["total"]),
            "+: a site withheld its count of this cell",
        ]
    )
    print(f"question {asked['id']} on {asked['project']}, {asked['question']['unit']}:")
    table(rows, ["SITE", "STATE", *label, "TOTAL", "WHY"])


def _count(cells: dict[tuple[str, ...], int | None], key: tuple[str, ...], k: int | None) -> str:
    if key not in cells:
        return "-"
    found = cells[key]
    return f"<{k}" if found is None else str(found)


def _total(total: int | None, state: str, k: int | None) -> str:
    if state != "answered":
        return "-"
    return f"<{k}" if total is None else str(total)


def sites(args: argparse.Namespace) -> int:
    """The sites the hub knows: on or off, their k, when each last called in."""
    session = session_for(args)
    found = session.get("/api/federation/sites", "listing the hub's sites").json()
    if not found:
        print("no site is registered at this hub")
        return DONE
    table(
        [
            [
                s["name"],
                "on" if s["enabled"] else "off",
                str(s["policy"].get("k", "-")),
                (s["last_seen_at"] or "never")[:19].replace("T", " "),
                ", ".join(sorted(s["policy"].get("algorithms", {}))) or "-",
            ]
            for s in found
        ],
        ["SITE", "FEDERATION", "K", "LAST SEEN (UTC)", "APPROVED ALGORITHMS"],
    )
    return DONE


def add_site(args: argparse.Namespace) -> int:
    """At a hub (admins): a machine credential for a site, with the member role on its
    projects, and the site registered by it; prints the site's settings (shown once). A
    credential whose site could not be registered is taken back: nothing half made."""
    session = session_for(args)
    known = session.get("/api/federation/sites", "listing the hub's sites").json()
    if any(site["name"] == args.name for site in known):
        raise CommandError(f"a site {args.name!r} is registered at {session.url} already", REFUSED)
    grants = [{"project": project, "role": "member"} for project in args.project]
    made = session.request(
        "POST",
        "/auth/clients",
        f"issuing {args.name}'s credential",
        json={"name": args.name, "grants": grants},
    ).json()
    revoke = f"/auth/clients/{made['client_id']}"
    with undone_on_failure(session, revoke, "taking the credential back"):
        session.request(
            "POST",
            "/api/federation/sites",
            f"registering {args.name}",
            json={"name": args.name, "client_id": made["client_id"]},
        )
    print(f"GIFTCLOUD_FORWARD__HUB_URL={session.url}")
    print(f"GIFTCLOUD_FORWARD__CLIENT_ID={made['client_id']}")
    print(f"GIFTCLOUD_FORWARD__CLIENT_SECRET={made['client_secret']}")
    return DONE


def policy(args: argparse.Namespace) -> int:
    """At a site (its admins): the disclosure policy; with options, change it."""
    session = session_for(args)
    now = session.get("/api/federation/policy", "reading the site's policy").json()
    changes = {
        "enabled": args.on if args.on is not None else now["enabled"],
        "k": args.k if args.k is not None else now["k"],
        "noise": args.noise or now["noise"],
        "budget": args.budget if args.budget is not None else now["budget"],
    }
    if changes != {name: now[name] for name in changes}:
        now = session.request(
            "PUT", "/api/federation/policy", "setting the policy", json=changes
        ).json()
    print(
        f"federation {'on' if now['enabled'] else 'off'}; k = {now['k']}; noise {now['noise']};"
        f" budget {now['budget']:g} per person and project (set by {now['updated_by'] or '-'})"
    )
    return DONE


def wire(
    group: Callable[[str, str], Callable[..., argparse.ArgumentParser]],
) -> Callable[..., argparse.ArgumentParser]:
    """``giftcloud federate count|sites|add-site|policy``; the adder of more."""
    federate = group(
        "federate", "federated counts: a hub asks its sites, each answers under its own policy"
    )
    asking = federate(
        "count", "ask the sites how many match (only released cells come back)", count
    )
    asking.add_argument("project", help="the project, at the hub")
    asking.add_argument(
        "--where",
        action="append",
        metavar="EXPR",
        help="modality=CT, modality=CT,MR, age_at_study>=40, study_date=20200101..20201231,"
        " study_description~=brain (repeat: all must hold)",
    )
    asking.add_argument(
        "--by", action="append", metavar="ATTRIBUTE", help="group by (at most twice)"
    )
    asking.add_argument("--unit", choices=["subjects", "studies", "series"], default="subjects")
    asking.add_argument(
        "--epsilon", type=float, help="add noise for this epsilon (from your budget)"
    )
    asking.add_argument(
        "--k", type=int, help="a smallest cell you want (a site uses its own if larger)"
    )
    asking.add_argument("--site", action="append", metavar="NAME", help="ask only these sites")
    asking.add_argument("--wait", type=float, default=90, help="seconds to wait for the answers")
    federate("sites", "the sites the hub knows, and when each last called in", sites)
    adding = federate(
        "add-site",
        "at a hub (admins): issue a site its credential and register it; prints the site's"
        " settings (the secret is shown once)",
        add_site,
    )
    adding.add_argument("name", help="the site's name: lower-case letters, digits and '-'")
    adding.add_argument(
        "--project", action="append", required=True, help="a project it answers for (repeat)"
    )
    setting = federate(
        "policy", "at a site (admins): the disclosure policy; options change it", policy
    )
    switch = setting.add_mutually_exclusive_group()
    switch.add_argument("--on", dest="on", action="store_true", default=None, help="answer the hub")
    switch.add_argument("--off", dest="on", action="store_false", help="answer nothing")
    setting.add_argument("--k", type=int, help="the smallest count released (5 at least)")
    setting.add_argument("--noise", choices=["off", "allowed", "required"])
    setting.add_argument("--budget", type=float, help="epsilon per person and project")
    return federate

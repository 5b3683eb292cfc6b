"""``giftcloud workstation add|ls|remove``: the AE titles a person queries and retrieves from
at a hub (api's DICOM query/retrieve). ``add`` makes the API key the AE title acts as — on
one project, with the role asked for, usable only from the workstation's address — and
registers the title with it; ``remove`` unregisters the title and revokes the key made for
it. Nothing is left half made: a key whose title could not be registered is taken back."""

from __future__ import annotations

import argparse
import ipaddress
from collections.abc import Callable
from urllib.parse import quote

from giftcloud.commands import session_for, table
from giftcloud.session import DONE, Session, undone_on_failure

CALLERS = "/api/dimse/callers"


def key_name(title: str) -> str:
    """What the key made for an AE title is called (how ``remove`` finds it again)."""
    return f"DICOM workstation {title}"


def networks_of(host: str) -> list[str]:
    """The key's networks: the workstation's address alone, when it is one (a host name can
    change address: then the key has none of its own, and the AE title's host still binds)."""
    try:
        return [str(ipaddress.ip_network(host.strip("[]")))]
    except ValueError:
        return []


def add(args: argparse.Namespace) -> int:
    session = session_for(args)
    title = args.ae_title
    made = session.request(
        "POST",
        f"/auth/projects/{quote(args.project)}/keys",
        f"making {title}'s key on {args.project}",
        json={
            "name": key_name(title),
            "role": args.role,
            "expires_days": args.expires_days,
            "networks": networks_of(args.host),
        },
    ).json()
    revoke = f"/auth/projects/{quote(args.project)}/keys/{quote(made['id'])}"
    with undone_on_failure(session, revoke, f"taking {title}'s key back"):
        registered = session.request(
            "PUT",
            f"{CALLERS}/{quote(title, safe='')}",
            f"registering {title}",
            json={"host": args.host, "port": args.port, "api_key": made["key"]},
        ).json()
    moves = (
        f"C-MOVE sends to {registered['host']}:{registered['port']}"
        if registered["port"]
        else "no C-MOVE to it (no --port): use C-GET"
    )
    print(
        f"{registered['ae_title']} at {registered['host']} queries and retrieves {args.project}"
        f" as {args.role} until {made['expires_at'][:10]}; {moves}."
        " Call the hub's query/retrieve AE title (GIFTCLOUD by default) at its DICOM port."
    )
    return DONE


def listed(args: argparse.Namespace) -> int:
    session = session_for(args)
    found = session.get(CALLERS, "listing your AE titles").json()
    table(
        [
            [
                c["ae_title"],
                c["username"],
                c["host"],
                str(c["port"] or "-"),
                c["registered_at"][:10],
            ]
            for c in found
        ],
        ["AE TITLE", "USER", "HOST", "MOVE PORT", "REGISTERED"],
        empty=f"{session.who} has no AE title registered at {session.url}",
    )
    return DONE


def remove(args: argparse.Namespace) -> int:
    session = session_for(args)
    title = args.ae_title
    session.request("DELETE", f"{CALLERS}/{quote(title, safe='')}", f"removing {title}")
    revoked = _revoke_keys(session, title)
    print(
        f"{title} is no longer registered; its associations are refused"
        + (f"; {revoked} key(s) made for it revoked" if revoked else "")
    )
    return DONE


def _revoke_keys(session: Session, title: str) -> int:
    """Revoke the caller's own keys made for ``title``, in every project they have a role on."""
    revoked = 0
    for project in session.get("/api/projects", "listing your projects").json():
        base = f"/auth/projects/{quote(project['name'])}/keys"
        for key in session.get(base, f"listing {project['name']}'s keys").json():
            ours = key["created_by"].lower() == session.who.lower() and key["revoked_at"] is None
            if ours and key["name"] == key_name(title):
                session.request("DELETE", f"{base}/{quote(key['id'])}", "revoking its key")
                revoked += 1
    return revoked


def wire(group: Callable[[str, str], Callable[..., argparse.ArgumentParser]]) -> None:
    workstation = group(
        "workstation",
        "the AE titles you query and retrieve from at a hub (DICOM C-FIND, C-GET, C-MOVE)",
    )
    adding = workstation(
        "add",
        "register an AE title of yours: its associations from --host read --project with"
        " a key made for it",
        add,
    )
    adding.add_argument("ae_title", help="the workstation's AE title (1 to 16 characters)")
    adding.add_argument("--project", required=True, help="the project it reads")
    adding.add_argument("--host", required=True, help="the address its associations come from")
    adding.add_argument("--port", type=int, help="its port, where a C-MOVE sends (none: C-GET)")
    adding.add_argument(
        "--role",
        default="collaborator",
        choices=["collaborator", "member", "owner"],
        help="the key's role (no higher than yours; collaborator: read)",
    )
    adding.add_argument("--expires-days", type=int, default=90, help="the key's lifetime")
    workstation("ls", "your AE titles (an admin's: everyone's)", listed)
    removing = workstation(
        "remove", "unregister an AE title and revoke the key made for it", remove
    )
    removing.add_argument("ae_title", help="the AE title")

"""``giftcloud project create``, ``giftcloud user add``, ``giftcloud member add/remove/ls``:
what an admin or a project's owner does in the first hour, without curl."""

from __future__ import annotations

import argparse
import time
from urllib.parse import quote

from giftcloud.commands import session_for, table
from giftcloud.session import DONE, CommandError, Session


def project_create(args: argparse.Namespace) -> int:
    """A project you own; ready to take files when this returns."""
    session = session_for(args)
    session.request(
        "POST",
        "/auth/projects",
        f"creating project {args.name}",
        json={"name": args.name, "title": args.title},
    )
    # the other services learn of it by an event: wait until it takes files
    deadline = time.monotonic() + 30
    while session.http.get(f"/ingest/{quote(args.name)}/uploads").status_code == 404:
        if time.monotonic() > deadline:
            raise CommandError(f"project {args.name} was made but ingest has not heard of it")
        time.sleep(0.3)
    print(f"created project {args.name}; you own it (giftcloud member add to share it)")
    return DONE


def user_add(args: argparse.Namespace) -> int:
    """An account without a password, and the one-time link with which its owner sets one."""
    session = session_for(args)
    roles = args.site_role or []
    session.request(
        "POST",
        "/auth/users",
        f"adding {args.username}",
        json={"username": args.username, "email": args.email, "site_roles": roles},
    )
    link = session.request(
        "POST",
        f"/auth/users/{quote(args.username)}/password-reset",
        f"making {args.username}'s link",
    ).json()
    print(f"added {args.username}; hand them this link to set their password (once, until")
    print(f"{link['expires_at']}): {link['url']}")
    return DONE


def member_add(args: argparse.Namespace) -> int:
    session = session_for(args)
    session.request(
        "PUT",
        f"/auth/projects/{quote(args.project)}/members",
        f"adding {args.username} to {args.project}",
        json={"username": args.username, "role": args.role},
    )
    members = _members(session_for(args), args.project)
    if not any(m["username"] == args.username.lower() for m in members):
        raise CommandError(f"no account {args.username!r} (giftcloud user add makes one)")
    print(f"{args.username} is {args.role} of {args.project}")
    return DONE


def member_remove(args: argparse.Namespace) -> int:
    session = session_for(args)
    session.request(
        "DELETE",
        f"/auth/projects/{quote(args.project)}/members/{quote(args.username)}",
        f"removing {args.username} from {args.project}",
    )
    print(f"{args.username} has no role on {args.project} (their next token, within 15 minutes)")
    return DONE


def member_ls(args: argparse.Namespace) -> int:
    members = _members(session_for(args), args.project)
    table([[m["username"], m["role"]] for m in members], ["USER", "ROLE"])
    return DONE


def _members(session: Session, project: str) -> list[dict[str, str]]:
    found: list[dict[str, str]] = session.get(
        f"/auth/projects/{quote(project)}/members", f"listing {project}'s members"
    ).json()
    return found

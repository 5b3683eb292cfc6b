"""``giftcloud quarantine``: what de-identification refused in a project, for its owners to
release (processed again under the project's rules of now) or delete for good."""

from __future__ import annotations

import argparse
from urllib.parse import quote

from giftcloud.commands import session_for, table
from giftcloud.session import DONE


def quarantine(args: argparse.Namespace) -> int:
    """PROJECT: the files held, oldest first, with the reason; --release/--delete KEY...: act
    on them (owners; audited)."""
    session = session_for(args)
    base = f"/anonymise/projects/{quote(args.project)}/quarantine"
    for how, keys in (("release", args.release), ("delete", args.delete)):
        if keys:
            done = session.request(
                "POST",
                f"{base}/{how}",
                f"{how.rstrip('e')}ing {len(keys)} file(s)",
                json={"keys": keys},
            ).json()
            verb = "released (each is archived, or held again with the reason of now)"
            print(f"{len(done['keys'])} file(s) {verb if how == 'release' else 'deleted'}")
    if args.release or args.delete:
        return DONE
    held = session.get(base, f"listing {args.project}'s quarantine").json()
    if not held:
        print(f"nothing is held in {args.project}'s quarantine")
        return DONE
    table(
        [[h["key"], h["since"][:19].replace("T", " "), h["state"], h["reason"]] for h in held],
        ["KEY", "SINCE (UTC)", "STATE", "WHY"],
    )
    return DONE

"""The site's ClientApp process: Flower's ``flwr-clientapp`` with the site's two rules.

* **Only approved apps run.** The bundle (FAB) the hub sent is hashed here, by this
  process, before it is unpacked; a digest the site's admin has not approved is refused
  and the hub gets an error reply saying so. (Flower's own ``hash_str`` is the sender's
  claim; it is checked against the bytes, never trusted.)
* **Every reply passes the site's disclosure control** (:mod:`giftcloud_flower.disclosure`),
  put around the app by the site, not by the app.

Flower 1.42 gives no hook for either, so this wraps two names of its ClientApp runtime
(``install_from_fab`` and ``get_load_client_app_fn``); the version is pinned in this
project's lock and ``tests/test_gate.py`` fails if they move.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import flwr.supernode.runtime.run_clientapp as runtime
from flwr.app import Context, Message
from flwr.supernode.cli.flwr_clientapp import flwr_clientapp

from giftcloud_flower.disclosure import mod_for
from giftcloud_flower.site import Site, load


class NotApproved(Exception):
    """An app bundle whose digest is not on the site's allow-list."""


def check(site: Site, content: bytes) -> str:
    """The bundle's SHA-256 when the site approved it; :class:`NotApproved` otherwise."""
    digest = hashlib.sha256(content).hexdigest()
    if digest not in site.apps:
        raise NotApproved(
            f"{site.name} has not approved the app with digest sha256:{digest}; "
            "its admin approves apps by digest"
        )
    return digest


class Guarded:
    """A loaded ClientApp with the site's mod around it."""

    def __init__(self, app: Callable[[Message, Context], Message], site: Site) -> None:
        self.app, self.mod = app, mod_for(site, record=lambda what: audit(site, what))

    def __call__(self, message: Message, context: Context) -> Message:
        return self.mod(message, context, self.app)


def audit(site: Site, what: dict[str, Any]) -> None:
    """One line per decision in the site's Flower audit log (stderr when none is set)."""
    line = json.dumps({"at": time.time(), "site": site.name, **what}, default=str)
    if site.audit_file:
        with site.audit_file.open("a") as out:
            out.write(line + "\n")
    else:
        print(f"giftcloud: {line}", file=sys.stderr, flush=True)


def guard(site: Site) -> None:
    """Put the site's rules into Flower's ClientApp runtime (this process only)."""
    install = getattr(runtime, "install_from_fab")  # noqa: B009
    loader = getattr(runtime, "get_load_client_app_fn")  # noqa: B009
    approved: set[str] = set()

    def install_from_fab(content: bytes, *args: Any, **kwargs: Any) -> Any:
        try:
            digest = check(site, content)
        except NotApproved as refused:
            audit(site, {"decision": "refused", "reason": str(refused)})
            raise
        approved.add(digest)
        audit(site, {"decision": "run", "app": site.apps[digest], "digest": digest})
        return install(content, *args, **kwargs)

    def get_load_client_app_fn(*args: Any, **kwargs: Any) -> Callable[[str, str, str], Any]:
        load_app = loader(*args, **kwargs)

        def load_guarded(fab_id: str, fab_version: str, fab_hash: str) -> Guarded:
            if fab_hash not in approved:  # the claim must name the bytes that were checked
                raise NotApproved(f"the app {fab_id} names digest {fab_hash}, not the one sent")
            return Guarded(load_app(fab_id, fab_version, fab_hash), site)

        return load_guarded

    setattr(runtime, "install_from_fab", install_from_fab)  # noqa: B010
    setattr(runtime, "get_load_client_app_fn", get_load_client_app_fn)  # noqa: B010


def main() -> None:
    guard(load())
    flwr_clientapp()


if __name__ == "__main__":
    main()

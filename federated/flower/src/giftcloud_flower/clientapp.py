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
import sys
from collections.abc import Callable
from typing import Any

import flwr.supernode.runtime.run_clientapp as runtime
from flwr.app import Context, Message
from flwr.supernode.cli.flwr_clientapp import flwr_clientapp

from giftcloud_flower import siteapi
from giftcloud_flower.disclosure import Withheld, mod_for
from giftcloud_flower.site import Site, load


class NotApproved(Exception):
    """An app bundle whose digest is not on the site's allow-list."""


def check(site: Site, content: bytes, apps: dict[str, str]) -> str:
    """The bundle's SHA-256 when the site approved it (``apps``: digest -> name);
    :class:`NotApproved` otherwise."""
    digest = hashlib.sha256(content).hexdigest()
    if digest not in apps:
        raise NotApproved(
            f"{site.name} has not approved the app with digest sha256:{digest}; "
            "its admin approves apps by digest"
        )
    return digest


class Guarded:
    """A loaded ClientApp with the site's mod around it; each decision is recorded in the
    site's audit trail (as the app's, by its name and digest) before the reply goes."""

    def __init__(
        self, app: Callable[[Message, Context], Message], site: Site, name: str, digest: str
    ) -> None:
        def note(what: dict[str, Any]) -> None:
            siteapi.record(site, {"app": name, "digest": digest, **what})

        def spend(what: dict[str, object]) -> dict[str, object]:
            try:
                return siteapi.spend(site, what)
            except siteapi.OverBudget as over:
                raise Withheld(str(over)) from over
            except siteapi.SiteApiError as error:  # the ledger unreachable: nothing leaves
                print(f"giftcloud: {site.name}: no spend recorded: {error}", file=sys.stderr)
                raise Withheld(
                    "this site could not record the spend of its learning budget"
                ) from error

        self.app, self.mod = app, mod_for(site, record=note, spend=spend)

    def __call__(self, message: Message, context: Context) -> Message:
        return self.mod(message, context, self.app)


def audit(site: Site, what: dict[str, Any]) -> None:
    """A decision into the site's audit trail; one that cannot be recorded also goes to
    stderr (and the caller does not act on it)."""
    try:
        siteapi.record(site, what)
    except siteapi.SiteApiError as error:
        print(
            f"giftcloud: {site.name}: {what.get('decision')} not recorded: {error}", file=sys.stderr
        )
        raise


def guard(site: Site) -> None:
    """Put the site's rules into Flower's ClientApp runtime (this process only)."""
    install = getattr(runtime, "install_from_fab")  # noqa: B009
    loader = getattr(runtime, "get_load_client_app_fn")  # noqa: B009
    approved: dict[str, str] = {}  # digest -> name, of the bundles checked in this process

    def install_from_fab(content: bytes, *args: Any, **kwargs: Any) -> Any:
        digest = hashlib.sha256(content).hexdigest()
        try:
            apps = siteapi.approved(site)  # asked now: a revoked approval counts at once
        except siteapi.SiteApiError as error:
            raise NotApproved(f"{site.name} runs nothing it cannot check: {error}") from error
        try:
            check(site, content, apps)
        except NotApproved as refused:
            audit(site, {"decision": "refused", "digest": digest, "reason": str(refused)})
            raise
        approved[digest] = apps[digest]
        audit(site, {"decision": "run", "app": apps[digest], "digest": digest})
        return install(content, *args, **kwargs)

    def get_load_client_app_fn(*args: Any, **kwargs: Any) -> Callable[[str, str, str], Any]:
        load_app = loader(*args, **kwargs)

        def load_guarded(fab_id: str, fab_version: str, fab_hash: str) -> Guarded:
            if fab_hash not in approved:  # the claim must name the bytes that were checked
                raise NotApproved(f"the app {fab_id} names digest {fab_hash}, not the one sent")
            loaded = load_app(fab_id, fab_version, fab_hash)
            return Guarded(loaded, site, approved[fab_hash], fab_hash)

        return load_guarded

    setattr(runtime, "install_from_fab", install_from_fab)  # noqa: B010
    setattr(runtime, "get_load_client_app_fn", get_load_client_app_fn)  # noqa: B010


def main() -> None:
    guard(load())
    flwr_clientapp()


if __name__ == "__main__":
    main()

"""auth, composed: each domain's service built once, on the same database, bus and journal,
and what runs beside them (the outbox relay, the signing-key reload)."""

from __future__ import annotations

import asyncio
import contextlib

from argon2 import PasswordHasher
from giftcloud_core.bus import Bus
from giftcloud_core.db import Database
from giftcloud_core.settings import Settings

from giftcloud_auth.accounts.links import Links
from giftcloud_auth.accounts.service import Accounts
from giftcloud_auth.journal import Journal
from giftcloud_auth.keys.service import Keys
from giftcloud_auth.projects.service import Projects
from giftcloud_auth.signin.service import PasswordSignIn
from giftcloud_auth.signin.sso import SingleSignOn
from giftcloud_auth.signin.throttle import Throttle
from giftcloud_auth.signin.tokens import Tokens
from giftcloud_auth.signing.revocation import Revocations
from giftcloud_auth.signing.service import SigningKeys


class Auth:
    def __init__(self, settings: Settings, db: Database, bus: Bus) -> None:
        config = settings.auth
        self.settings = settings
        self.journal = Journal(db, bus, config.outbox_interval_seconds)
        self.signing = SigningKeys(config, db, self.journal)
        self.revocations = Revocations(db, config.access_token_minutes)
        self.projects = Projects(db, bus, self.journal, self.revocations)
        self.tokens = Tokens(config, db, self.journal, self.signing, self.revocations)
        self.throttle = Throttle(config, db)
        hasher = PasswordHasher()  # argon2id
        self.sign_in = PasswordSignIn(db, self.journal, hasher, self.throttle, self.tokens)
        self.sso = SingleSignOn(config, settings.public_url, db, self.journal, self.tokens)
        self.keys = Keys(config, db, self.journal, self.signing, self.revocations)
        self.accounts = Accounts(
            db, self.journal, hasher, self.tokens, self.revocations, self.throttle, self.keys
        )
        self.links = Links(config, settings.public_url, db, self.accounts)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.signing.load()
        given = self.settings.admin_password
        await self.accounts.ensure_admin(
            given.get_secret_value() if given else None, self.settings.data_dir
        )
        await self.projects.announce()
        self._tasks = [
            asyncio.create_task(self.journal.relay_forever()),
            asyncio.create_task(self.signing.reload_forever()),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

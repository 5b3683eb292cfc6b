"""The password grant: throttled, counted, audited, and answered in constant time whether
or not the account exists."""

from __future__ import annotations

import secrets
import uuid

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from giftcloud_core.db import Database

from giftcloud_auth.common import user_named
from giftcloud_auth.errors import AccountDisabled, SignInRefused
from giftcloud_auth.journal import Journal, Outcome
from giftcloud_auth.schemas import TokenResponse
from giftcloud_auth.signin.throttle import Throttle
from giftcloud_auth.signin.tokens import Tokens


class PasswordSignIn:
    def __init__(
        self,
        db: Database,
        journal: Journal,
        hasher: PasswordHasher,
        throttle: Throttle,
        tokens: Tokens,
    ) -> None:
        self.db = db
        self.journal = journal
        self.hasher = hasher
        self.throttle = throttle
        self.tokens = tokens
        # a constant-time answer for unknown users: verify against a real hash
        self._dummy_hash = hasher.hash(secrets.token_hex(16))

    async def grant(self, username: str, password: str, address: str) -> TokenResponse:
        name = username.strip().lower()[:128]
        refusal = await self.throttle.refusal(name, address)
        if refusal is not None:  # a throttled attempt counts: hammering locks the account
            await self.throttle.failed(name, address)
            await self._record(name, address, "denied", str(refusal))
            raise refusal
        async with self.db.session() as session:
            user = await user_named(session, name)
        stored = user.password_hash if user is not None and user.password_hash else None
        try:
            self.hasher.verify(stored or self._dummy_hash, password)
            ok = stored is not None
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok or user is None:
            await self.throttle.failed(name, address)
            await self._record(name, address, "failure", "wrong username or password")
            raise SignInRefused()
        if user.disabled:
            await self._record(name, address, "denied", "the account is disabled")
            raise AccountDisabled()
        async with self.db.session() as session:
            await self.throttle.succeeded(session, name, address)
            if self.hasher.check_needs_rehash(user.password_hash):
                user.password_hash = self.hasher.hash(password)
                session.add(user)
            response = await self.tokens.issue(session, user, family=uuid.uuid4().hex)
            self.journal.audit(session, "auth.sign-in", actor=user.username, address=address)
        return response

    async def _record(self, name: str, address: str, outcome: Outcome, detail: str) -> None:
        await self.journal.record(
            "auth.sign-in", actor=name, address=address, outcome=outcome, detail=detail
        )

"""The tokens of a sign-in: an access token with the user's roles as they are now, and a
refresh token of the sign-in's family, each used once. A token used twice was copied: the
whole family is revoked. A browser session is the family's newest refresh token, held in
an HttpOnly cookie and not rotated (its pages ask for access tokens at once, in tabs)."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from giftcloud_core.clock import now
from giftcloud_core.db import Database
from giftcloud_core.errors import Unauthorized
from giftcloud_core.settings import AuthSettings
from giftcloud_core.tokens import sign_in_subject
from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from giftcloud_auth.common import digest, user_named
from giftcloud_auth.journal import Journal
from giftcloud_auth.models import RefreshToken, User
from giftcloud_auth.projects.service import roles_of
from giftcloud_auth.schemas import TokenResponse
from giftcloud_auth.signing.revocation import Revocations
from giftcloud_auth.signing.service import SigningKeys


class Tokens:
    def __init__(
        self,
        config: AuthSettings,
        db: Database,
        journal: Journal,
        keys: SigningKeys,
        revocations: Revocations,
    ) -> None:
        self.config = config
        self.db = db
        self.journal = journal
        self.keys = keys
        self.revocations = revocations

    async def access(self, session: AsyncSession, user: User, family: str) -> tuple[str, int]:
        """An access token of a sign-in (``family``) with the user's roles as they are now,
        and its lifetime."""
        lifetime = self.config.access_token_minutes * 60
        token = self.keys.signer.sign(
            user.username,
            site_roles=user.roles(),
            projects=await roles_of(session, user.username),
            lifetime_seconds=lifetime,
            sign_in=family,
        )
        return token, lifetime

    async def issue(self, session: AsyncSession, user: User, family: str) -> TokenResponse:
        """An access token with the user's roles as they are now, and the next refresh token."""
        access, lifetime = await self.access(session, user, family)
        refresh = secrets.token_urlsafe(32)
        refresh_lifetime = timedelta(days=self.config.refresh_token_days)
        session.add(
            RefreshToken(
                token_hash=digest(refresh),
                family=family,
                username=user.username,
                expires_at=now() + refresh_lifetime,
            )
        )
        return TokenResponse(
            access_token=access,
            expires_in=lifetime,
            refresh_token=refresh,
            refresh_expires_in=int(refresh_lifetime.total_seconds()),
        )

    async def refresh(self, token: str, address: str) -> TokenResponse:
        """The next token pair for a refresh token, used once."""
        at = now()
        async with self.db.session() as session:
            row = (
                await session.exec(
                    select(RefreshToken)
                    .where(RefreshToken.token_hash == digest(token))
                    .with_for_update()
                )
            ).first()
            if row is None:
                raise Unauthorized("unknown refresh token")
            user = await user_named(session, row.username)
            if row.used_at is not None and row.revoked_at is None:
                await self._end_family(session, row.family, at)
                self.journal.audit(
                    session,
                    "auth.refresh",
                    actor=row.username,
                    address=address,
                    outcome="denied",
                    detail="a refresh token was used twice: every token of its sign-in revoked",
                )
                refusal = Unauthorized(
                    "this refresh token was used before: the sign-in it belongs to is ended"
                )
            elif row.revoked_at is not None or row.used_at is not None:
                refusal = Unauthorized("this refresh token is revoked; sign in again")
            elif row.expires_at <= at:
                refusal = Unauthorized("this refresh token has expired; sign in again")
            elif user is None or user.disabled:
                refusal = Unauthorized("this account is disabled; sign in again")
            else:
                row.used_at = at
                session.add(row)
                response = await self.issue(session, user, family=row.family)
                self.journal.audit(session, "auth.refresh", actor=user.username, address=address)
                return response
        raise refusal  # after the commit: a revoked family stays revoked

    async def _end_family(self, session: AsyncSession, family: str, at: datetime) -> None:
        """End a sign-in: its refresh tokens, and the access tokens issued to it."""
        await session.exec(
            update(RefreshToken)
            .where(col(RefreshToken.family) == family, col(RefreshToken.revoked_at).is_(None))
            .values(revoked_at=at)
        )
        await self.revocations.revoke(session, sign_in_subject(family))

    async def end_every_sign_in(self, session: AsyncSession, username: str) -> None:
        """Every session and token of an account ends (disabled, password changed)."""
        await session.exec(
            update(RefreshToken)
            .where(col(RefreshToken.username) == username, col(RefreshToken.revoked_at).is_(None))
            .values(revoked_at=now())
        )
        await self.revocations.revoke(session, username)

    async def sign_out(self, token: str, address: str) -> None:
        """Revoke the sign-in a refresh token belongs to (every token of its family)."""
        async with self.db.session() as session:
            row = await session.get(RefreshToken, digest(token))
            if row is None:
                return  # nothing to end: the same answer as for a real one
            await self._end_family(session, row.family, now())
            self.journal.audit(session, "auth.sign-out", actor=row.username, address=address)

    async def session_access(self, refresh_token: str) -> TokenResponse:
        """An access token (the user's roles as they are now) for a live browser session,
        whose token is not used up."""
        live = await self._live_session(refresh_token)
        if live is None:
            raise Unauthorized("not signed in (the session has ended): sign in again")
        user, family = live
        async with self.db.session() as session:
            access, lifetime = await self.access(session, user, family)
        return TokenResponse(access_token=access, expires_in=lifetime)

    async def session_user(self, refresh_token: str) -> User | None:
        """Who a browser session (its refresh token, not used here) belongs to, if it is live."""
        live = await self._live_session(refresh_token)
        return None if live is None else live[0]

    async def _live_session(self, refresh_token: str) -> tuple[User, str] | None:
        async with self.db.session() as session:
            row = await session.get(RefreshToken, digest(refresh_token))
            if row is None or row.used_at or row.revoked_at or row.expires_at <= now():
                return None
            user = await user_named(session, row.username)
        return None if user is None or user.disabled else (user, row.family)

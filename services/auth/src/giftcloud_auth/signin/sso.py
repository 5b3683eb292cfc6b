"""Single sign-on: the browser is sent to the institution's provider with a state bound to
it, comes back with a code, and is signed in as the account of the identity the provider
vouches for (linked before, found by verified email, or made when the site allows)."""

from __future__ import annotations

import hmac
import secrets
import uuid
from datetime import timedelta

from giftcloud_core.access import safe_next
from giftcloud_core.clock import now
from giftcloud_core.db import Database
from giftcloud_core.errors import Forbidden, Unauthorized
from giftcloud_core.settings import AuthSettings
from sqlalchemy import delete, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from giftcloud_auth.common import digest, user_named
from giftcloud_auth.journal import Journal
from giftcloud_auth.models import OidcRequest, User
from giftcloud_auth.schemas import TokenResponse
from giftcloud_auth.signin.oidc import Identity, OidcClient, pkce_pair, username_from
from giftcloud_auth.signin.tokens import Tokens


class SingleSignOn:
    def __init__(
        self,
        config: AuthSettings,
        public_url: str,
        db: Database,
        journal: Journal,
        tokens: Tokens,
    ) -> None:
        self.config = config
        self.redirect_uri = f"{public_url.rstrip('/')}/auth/oidc/callback"
        self.db = db
        self.journal = journal
        self.tokens = tokens
        self._oidc: OidcClient | None = None

    @property
    def provider(self) -> OidcClient:
        if self._oidc is None:
            self._oidc = OidcClient(self.config)  # NotFound when SSO is not configured
        return self._oidc

    async def begin(self, next_path: str | None) -> tuple[str, str]:
        """The provider's sign-in URL, and the state to bind to the browser."""
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        verifier, challenge = pkce_pair()
        url = await self.provider.authorization_url(
            state=state, nonce=nonce, challenge=challenge, redirect_uri=self.redirect_uri
        )
        async with self.db.session() as session:
            await session.exec(delete(OidcRequest).where(col(OidcRequest.expires_at) < now()))
            session.add(
                OidcRequest(
                    state_hash=digest(state),
                    verifier=verifier,
                    nonce=nonce,
                    next_path=safe_next(next_path),
                    expires_at=now() + timedelta(minutes=10),
                )
            )
        return url, state

    async def finish(
        self, *, bound_state: str, state: str, code: str, address: str
    ) -> tuple[TokenResponse, str]:
        """Check the provider's answer belongs to this browser's sign-in, who it says the
        person is, and sign them in: a token pair (the refresh token is the session) and
        where they were going."""
        if not bound_state or not hmac.compare_digest(bound_state, state):
            raise Unauthorized("this sign-in was not started in this browser: start again")
        async with self.db.session() as session:
            request = await session.get(OidcRequest, digest(state))
            if request is not None:
                await session.delete(request)  # used once
        if request is None or request.expires_at <= now():
            raise Unauthorized("this sign-in is unknown or took too long: start again")
        identity = await self.provider.identify(
            code=code,
            verifier=request.verifier,
            nonce=request.nonce,
            redirect_uri=self.redirect_uri,
        )
        async with self.db.session() as session:
            user = await self._user_of(session, identity, address)
            if user is None or user.disabled:
                self.journal.audit(
                    session,
                    "auth.sign-in",
                    actor=user.username if user else identity.subject,
                    address=address,
                    outcome="denied",
                    detail=f"single sign-on via {identity.issuer}: "
                    + ("the account is disabled" if user else "no account for this identity"),
                )
                refusal = Forbidden(
                    "this account is disabled"
                    if user
                    else "there is no giftcloud account for this identity: ask an admin"
                )
            else:
                response = await self.tokens.issue(session, user, family=uuid.uuid4().hex)
                self.journal.audit(
                    session,
                    "auth.sign-in",
                    actor=user.username,
                    address=address,
                    detail=f"single sign-on via {identity.issuer}",
                )
                return response, request.next_path
        raise refusal

    async def _user_of(
        self, session: AsyncSession, identity: Identity, address: str
    ) -> User | None:
        linked = (
            await session.exec(
                select(User).where(
                    User.oidc_issuer == identity.issuer, User.oidc_subject == identity.subject
                )
            )
        ).first()
        if linked is not None:
            return linked
        if identity.email and identity.email_verified:
            by_email = (
                await session.exec(
                    select(User).where(
                        func.lower(User.email) == identity.email.lower(), User.oidc_subject == ""
                    )
                )
            ).first()
            if by_email is not None:
                by_email.oidc_issuer, by_email.oidc_subject = identity.issuer, identity.subject
                session.add(by_email)
                return by_email
        if not self.config.oidc_create_users:
            return None
        base = username_from(identity.claims, self.config.oidc_username_claim)
        name, number = base, 1
        while await user_named(session, name) is not None:
            number += 1
            name = f"{base}-{number}"
        user = User(
            username=name,
            password_hash="",
            email=identity.email if identity.email_verified else "",
            oidc_issuer=identity.issuer,
            oidc_subject=identity.subject,
        )
        session.add(user)
        await session.flush()
        self.journal.audit(
            session,
            "auth.user-create",
            actor="single sign-on",
            address=address,
            target=name,
            detail=f"first sign-in via {identity.issuer}",
        )
        return user

"""One-time links: a password reset an admin makes for an account, an invitation an owner
(to a project) or an admin (to the site) makes for an e-mail address. Each is used once,
before it expires; the secret travels in the link and is kept as its hash."""

from __future__ import annotations

import secrets
from datetime import timedelta

from giftcloud_core.clock import now
from giftcloud_core.db import Database
from giftcloud_core.errors import BadRequest, Conflict, Forbidden, NotFound
from giftcloud_core.settings import AuthSettings
from giftcloud_core.tokens import Principal
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from giftcloud_auth.accounts.service import Accounts, public
from giftcloud_auth.common import acceptable, digest, user_named
from giftcloud_auth.models import Membership, OneTimeLink, Project, User
from giftcloud_auth.schemas import InviteAccept, InviteCreate, OneTimeLinkPublic, UserPublic


class Links:
    def __init__(
        self, config: AuthSettings, public_url: str, db: Database, accounts: Accounts
    ) -> None:
        self.config = config
        self.base = public_url.rstrip("/")
        self.db = db
        self.accounts = accounts
        self.journal = accounts.journal

    def _made(
        self, session: AsyncSession, link: OneTimeLink, secret: str, path: str
    ) -> OneTimeLinkPublic:
        session.add(link)
        return OneTimeLinkPublic(
            url=f"{self.base}{path}?token={secret}", token=secret, expires_at=link.expires_at
        )

    async def _take(self, session: AsyncSession, secret: str, kind: str) -> OneTimeLink:
        link = (
            await session.exec(
                select(OneTimeLink)
                .where(OneTimeLink.token_hash == digest(secret))
                .with_for_update()
            )
        ).first()
        if link is None or link.kind != kind:
            raise NotFound("this link is not known: ask for a new one")
        if link.used_at is not None:
            raise Conflict("this link was used already: ask for a new one")
        if link.expires_at <= now():
            raise Conflict("this link has expired: ask for a new one")
        link.used_at = now()
        session.add(link)
        return link

    async def reset_link(self, username: str, caller: Principal, address: str) -> OneTimeLinkPublic:
        secret = secrets.token_urlsafe(32)
        async with self.db.session() as session:
            user = await user_named(session, username)
            if user is None:
                raise NotFound(f"no user {username!r}")
            self.journal.audit(
                session,
                "auth.password-reset-link",
                actor=caller.name,
                address=address,
                target=user.username,
            )
            return self._made(
                session,
                OneTimeLink(
                    token_hash=digest(secret),
                    kind="reset",
                    created_by=caller.subject,
                    username=user.username,
                    expires_at=now() + timedelta(hours=self.config.reset_hours),
                ),
                secret,
                "/auth/reset",
            )

    async def reset_password(self, secret: str, new: str, address: str) -> None:
        async with self.db.session() as session:
            link = await self._take(session, secret, "reset")
            user = await user_named(session, link.username)
            if user is None:
                raise NotFound("the account of this link no longer exists")
            await self.accounts.set_password(session, user, new)
            await self.accounts.throttle.forget_account(session, user.username)
            self.journal.audit(session, "auth.password-reset", actor=user.username, address=address)

    async def invite(
        self, data: InviteCreate, caller: Principal, address: str
    ) -> OneTimeLinkPublic:
        if (data.project is None) != (data.role is None):
            raise BadRequest("an invitation names both a project and a role, or neither")
        if data.site_roles and not caller.is_admin:
            raise Forbidden("only an admin invites with site roles")
        if data.project is None and not caller.is_admin:
            raise Forbidden("only an admin invites without a project")
        secret = secrets.token_urlsafe(32)
        async with self.db.session() as session:
            if data.project is not None:
                if await session.get(Project, data.project) is None:
                    raise NotFound(f"no project {data.project!r}")
                caller.require(data.project, frozenset({"owner"}))
            self.journal.audit(
                session,
                "auth.invite-create",
                actor=caller.name,
                address=address,
                project=data.project or "",
                target=data.email,
                detail=f"role {data.role or 'none'}; site roles {','.join(data.site_roles) or 'none'}",
            )
            return self._made(
                session,
                OneTimeLink(
                    token_hash=digest(secret),
                    kind="invite",
                    created_by=caller.subject,
                    project=data.project or "",
                    role=data.role or "",
                    site_roles=",".join(sorted(set(data.site_roles))),
                    email=data.email,
                    expires_at=now() + timedelta(hours=self.config.invite_hours),
                ),
                secret,
                "/auth/invite",
            )

    async def accept_invite(self, data: InviteAccept, address: str) -> UserPublic:
        password_hash = self.accounts.hasher.hash(acceptable(data.password, data.username))
        try:
            async with self.db.session() as session:
                link = await self._take(session, data.token, "invite")
                user = User(
                    username=data.username,
                    password_hash=password_hash,
                    email=link.email,
                    site_roles=link.site_roles,
                )
                session.add(user)
                await session.flush()
                if link.project and await session.get(Project, link.project) is not None:
                    session.add(
                        Membership(project=link.project, username=user.username, role=link.role)
                    )
                self.journal.audit(
                    session,
                    "auth.invite-accept",
                    actor=user.username,
                    address=address,
                    project=link.project,
                    detail=f"invited by {link.created_by}; role {link.role or 'none'}",
                )
        except IntegrityError as exc:
            raise Conflict(f"the username {data.username!r} is taken: choose another") from exc
        return public(user)

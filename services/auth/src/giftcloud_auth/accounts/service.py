"""Accounts, kept by admins: made, changed, disabled (at once: no sessions, no tokens, no
keys), deleted, unlocked; a person's own password. The last admin stays."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from giftcloud_core.clock import now
from giftcloud_core.db import Database
from giftcloud_core.errors import Conflict, NotFound
from giftcloud_core.tokens import Principal
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from giftcloud_auth.common import acceptable, user_named
from giftcloud_auth.errors import SignInRefused
from giftcloud_auth.journal import Journal
from giftcloud_auth.keys.service import Keys
from giftcloud_auth.models import Membership, OneTimeLink, RefreshToken, User
from giftcloud_auth.passwords import WeakPassword, check_password
from giftcloud_auth.schemas import UserCreate, UserPublic, UserUpdate
from giftcloud_auth.signin.throttle import Throttle
from giftcloud_auth.signin.tokens import Tokens
from giftcloud_auth.signing.revocation import Revocations

log = logging.getLogger(__name__)


def public(user: User, locked: bool = False) -> UserPublic:
    return UserPublic(
        username=user.username,
        site_roles=user.roles(),
        email=user.email,
        disabled=user.disabled,
        locked=locked,
        single_sign_on=bool(user.oidc_subject),
        created_at=user.created_at,
    )


async def _admins(session: AsyncSession) -> list[str]:
    users = (await session.exec(select(User).where(col(User.disabled).is_(False)))).all()
    return [u.username for u in users if "admin" in u.roles()]


class Accounts:
    def __init__(
        self,
        db: Database,
        journal: Journal,
        hasher: PasswordHasher,
        tokens: Tokens,
        revocations: Revocations,
        throttle: Throttle,
        keys: Keys,
    ) -> None:
        self.db = db
        self.journal = journal
        self.hasher = hasher
        self.tokens = tokens
        self.revocations = revocations
        self.throttle = throttle
        self.keys = keys

    async def ensure_admin(self, given: str | None, data_dir: Path) -> None:
        """The first start makes the user 'admin', with ``given`` as its password or a new
        one written to a file only this user can read (never to the logs)."""
        async with self.db.session() as session:
            if (await session.exec(select(User).limit(1))).first() is not None:
                return
            password = given or secrets.token_urlsafe(18)
            try:
                check_password(password, username="admin")
            except WeakPassword as exc:
                raise RuntimeError(f"GIFTCLOUD_ADMIN_PASSWORD is too weak: {exc}") from None
            session.add(
                User(username="admin", password_hash=self.hasher.hash(password), site_roles="admin")
            )
            if given is None:  # before the commit: no admin whose password nobody has
                path = _write_secret(data_dir / "admin-password", password)
        if given is None:
            # never the password itself: stdout ends up in container logs
            print(
                f"giftcloud: created user 'admin'; its password is in {path} (readable by you"
                " only): read it, sign in, change it, delete the file",
                flush=True,
            )
        log.info("created the first user 'admin'")

    async def listed(self) -> list[UserPublic]:
        async with self.db.session() as session:
            users = (await session.exec(select(User).order_by(col(User.username)))).all()
            locked = await self.throttle.locked_accounts(session)
        return [public(u, u.username in locked) for u in users]

    async def create(self, data: UserCreate, caller: Principal, address: str) -> UserPublic:
        password_hash = ""
        if data.password is not None:
            password_hash = self.hasher.hash(acceptable(data.password, data.username))
        user = User(
            username=data.username,
            password_hash=password_hash,
            email=data.email,
            site_roles=",".join(sorted(set(data.site_roles))),
        )
        try:
            async with self.db.session() as session:
                session.add(user)
                await session.flush()
                self.journal.audit(
                    session,
                    "auth.user-create",
                    actor=caller.name,
                    address=address,
                    target=user.username,
                    detail=f"site roles: {user.site_roles or 'none'}",
                )
        except IntegrityError as exc:  # the same name in any case
            raise Conflict(f"user {data.username!r} exists already") from exc
        return public(user)

    async def update(
        self, username: str, data: UserUpdate, caller: Principal, address: str
    ) -> UserPublic:
        async with self.db.session() as session:
            user = await user_named(session, username)
            if user is None:
                raise NotFound(f"no user {username!r}")
            changes = []
            losing_admin = (data.disabled is True) or (
                data.site_roles is not None and "admin" not in data.site_roles
            )
            if losing_admin and await _admins(session) == [user.username]:
                raise Conflict("the last admin cannot be disabled or lose the admin role")
            if data.disabled is not None and data.disabled != user.disabled:
                user.disabled = data.disabled
                changes.append("disabled" if data.disabled else "enabled")
                if data.disabled:  # at once: no sessions, no tokens, no keys
                    await self.tokens.end_every_sign_in(session, user.username)
            if data.site_roles is not None:
                user.site_roles = ",".join(sorted(set(data.site_roles)))
                changes.append(f"site roles: {user.site_roles or 'none'}")
                await self.revocations.revoke(session, user.username)  # roles are in tokens
            if data.email is not None:
                user.email = data.email
                changes.append("email")
            session.add(user)
            self.journal.audit(
                session,
                "auth.user-update",
                actor=caller.name,
                address=address,
                target=user.username,
                detail="; ".join(changes),
            )
        return public(user)

    async def delete(self, username: str, caller: Principal, address: str) -> None:
        async with self.db.session() as session:
            user = await user_named(session, username)
            if user is None:
                raise NotFound(f"no user {username!r}")
            if await _admins(session) == [user.username]:
                raise Conflict("the last admin cannot be deleted")
            name = user.username
            await self.tokens.end_every_sign_in(session, name)
            await self.keys.revoke_made_by(session, name)
            for table, column in (
                (Membership, Membership.username),
                (RefreshToken, RefreshToken.username),
                (OneTimeLink, OneTimeLink.username),
            ):
                await session.exec(delete(table).where(col(column) == name))
            await session.delete(user)
            self.journal.audit(
                session, "auth.user-delete", actor=caller.name, address=address, target=name
            )

    async def unlock(self, username: str, caller: Principal, address: str) -> None:
        name = username.lower()
        async with self.db.session() as session:
            await self.throttle.forget_account(session, name)
            self.journal.audit(
                session, "auth.user-unlock", actor=caller.name, address=address, target=name
            )

    async def change_password(
        self, caller: Principal, current: str, new: str, address: str
    ) -> None:
        async with self.db.session() as session:
            user = await user_named(session, caller.subject)
            try:
                if user is None or not user.password_hash:
                    raise VerificationError
                self.hasher.verify(user.password_hash, current)
            except (VerificationError, InvalidHashError):
                raise SignInRefused("the current password is wrong") from None
            await self.set_password(session, user, new)
            self.journal.audit(
                session, "auth.password-change", actor=user.username, address=address
            )

    async def set_password(self, session: AsyncSession, user: User, new: str) -> None:
        """A new password (if the policy takes it); every sign-in of the account ends."""
        user.password_hash = self.hasher.hash(acceptable(new, user.username))
        user.password_changed_at = now()
        session.add(user)
        await self.tokens.end_every_sign_in(session, user.username)


def _write_secret(path: Path, secret: str) -> Path:
    """Write ``secret`` to a new file only its owner can read; a clear error if it cannot."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secret + "\n")
        os.chmod(path, 0o600)  # an older file of another mode is made private too
    except OSError as exc:
        raise RuntimeError(
            f"cannot write the generated admin password to {path} ({exc.strerror}): set"
            " GIFTCLOUD_ADMIN_PASSWORD, or GIFTCLOUD_DATA_DIR to a folder this process may write"
        ) from exc
    return path.resolve()

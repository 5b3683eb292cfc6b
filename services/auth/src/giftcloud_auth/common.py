"""What every domain of auth shares: the clock, how a secret is kept, an account looked up
by name in any case, the network and password rules as 400s."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from giftcloud_core.errors import BadRequest
from giftcloud_core.network import InvalidNetwork, normalise_networks
from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from giftcloud_auth.models import User
from giftcloud_auth.passwords import WeakPassword, check_password


def digest(secret: str) -> str:
    """How a random secret (refresh token, key, link) is kept: its SHA-256."""
    return hashlib.sha256(secret.encode()).hexdigest()


def split(text: str | None) -> list[str]:
    """A comma-separated column as a list."""
    return [item for item in (text or "").split(",") if item]


def networks(values: Sequence[str]) -> tuple[str, ...]:
    """CIDRs as stored, or 400 naming the one that is not."""
    try:
        return normalise_networks(values)
    except InvalidNetwork as exc:
        raise BadRequest(str(exc)) from exc


def acceptable(password: str, username: str) -> str:
    """The password if the policy takes it, or 400 saying why not."""
    try:
        return check_password(password, username=username)
    except WeakPassword as exc:
        raise BadRequest(str(exc)) from exc


async def user_named(session: AsyncSession, username: str) -> User | None:
    """The account of ``username`` in any case (admin, Admin and ADMIN are one)."""
    statement = select(User).where(func.lower(User.username) == username.lower())
    return (await session.exec(statement)).first()

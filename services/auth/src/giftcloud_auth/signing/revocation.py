"""Access tokens are checked by every service on its own; what ends them early is this list
of subjects (a user, a key, a sign-in) and the moment before which their tokens are
refused. The services fetch it every few seconds."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from giftcloud_core.clock import now
from giftcloud_core.db import Database
from giftcloud_core.tokens import subject_digest
from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from giftcloud_auth.models import Revocation


class Revocations:
    def __init__(self, db: Database, token_minutes: int) -> None:
        self.db = db
        self.token_minutes = token_minutes
        self._cached: tuple[float, dict[str, int]] = (-1e9, {})

    async def revoke(self, session: AsyncSession, subject: str) -> None:
        """Refuse the subject's access tokens issued until now (the services learn it within
        ``revocation_poll_seconds``)."""
        moment = now()
        statement = insert(Revocation).values(subject=subject, revoked_before=moment)
        await session.exec(
            statement.on_conflict_do_update(
                index_elements=["subject"], set_={"revoked_before": moment}
            )
        )
        self._cached = (-1e9, {})

    async def listed(self) -> dict[str, int]:
        """The revocation list the services check tokens against (subjects hashed), of the
        last token lifetime (older tokens have expired anyway); cached for a second."""
        loop = asyncio.get_running_loop()
        fetched, cached = self._cached
        if loop.time() - fetched < 1:
            return cached
        horizon = now() - timedelta(minutes=self.token_minutes, seconds=60)
        async with self.db.session() as session:
            await session.exec(delete(Revocation).where(col(Revocation.revoked_before) < horizon))
            rows = (await session.exec(select(Revocation))).all()
        revoked = {
            subject_digest(r.subject): int(r.revoked_before.timestamp() * 1000) for r in rows
        }
        self._cached = (loop.time(), revoked)
        return revoked

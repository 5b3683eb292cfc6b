"""The signing key ring, kept in the database so that replicas share it."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from giftcloud_core.clock import now
from giftcloud_core.db import Database
from giftcloud_core.settings import AuthSettings
from giftcloud_core.tokens import TokenSigner, generate_private_key_pem
from sqlalchemy import delete, update
from sqlmodel import col, select

from giftcloud_auth.journal import Journal
from giftcloud_auth.keyring import KeyRing, RingKey
from giftcloud_auth.models import SigningKey

log = logging.getLogger(__name__)
#: how often a replica reads the ring again (another may have rotated it)
RELOAD_SECONDS = 10


class SigningKeys:
    def __init__(self, config: AuthSettings, db: Database, journal: Journal) -> None:
        self.config = config
        self.db = db
        self.journal = journal
        self._ring: KeyRing | None = None

    @property
    def ring(self) -> KeyRing:
        if self._ring is None:
            raise RuntimeError("SigningKeys.load() was not called")
        return self._ring

    @property
    def signer(self) -> TokenSigner:
        """The key that signs now."""
        return self.ring.active(now())

    def jwks(self) -> dict[str, object]:
        return self.ring.jwks(now())

    async def load(self) -> None:
        """The ring from the database (its first key made on the first start), or the one
        key of ``GIFTCLOUD_AUTH__SIGNING_KEY``."""
        configured = self.config.signing_key
        issuer, audience = self.config.issuer, self.config.audience
        if configured is not None:
            signer = TokenSigner(configured.get_secret_value(), issuer, audience)
            self._ring = KeyRing([RingKey(signer, datetime.min.replace(tzinfo=UTC), None)])
            return
        async with self.db.session() as session:
            stored = list((await session.exec(select(SigningKey))).all())
            if not stored:
                pem = generate_private_key_pem()
                first = SigningKey(
                    kid=TokenSigner(pem, issuer, audience).kid,
                    private_pem=pem,
                    activates_at=now() - timedelta(seconds=1),
                )
                session.add(first)
                stored = [first]
        self._ring = KeyRing(
            [
                RingKey(TokenSigner(k.private_pem, issuer, audience), k.activates_at, k.retires_at)
                for k in stored
            ]
        )

    async def rotate(self) -> SigningKey:
        """A new signing key: published now, signing after ``key_publish_seconds``; the keys
        it replaces leave the JWKS once the last token they signed has expired."""
        if self.config.signing_key is not None:
            raise RuntimeError(
                "the signing key comes from GIFTCLOUD_AUTH__SIGNING_KEY: rotate it there"
            )
        pem = generate_private_key_pem()
        signer = TokenSigner(pem, self.config.issuer, self.config.audience)
        activates = now() + timedelta(seconds=self.config.key_publish_seconds)
        retires = KeyRing.retirement(activates, self.config.access_token_minutes * 60)
        key = SigningKey(kid=signer.kid, private_pem=pem, activates_at=activates)
        async with self.db.session() as session:
            await session.exec(
                update(SigningKey)
                .where(col(SigningKey.retires_at).is_(None))
                .values(retires_at=retires)
            )
            session.add(key)
            self.journal.audit(
                session, "auth.signing-key-rotate", actor="operator", address="", target=key.kid
            )
            await session.exec(  # long retired keys go
                delete(SigningKey).where(col(SigningKey.retires_at) < now() - timedelta(days=1))
            )
        await self.load()
        return key

    async def reload_forever(self) -> None:
        """Read the ring again every few seconds; a failed read keeps the ring there was,
        and says why."""
        while True:
            await asyncio.sleep(RELOAD_SECONDS)
            try:
                await self.load()
            except Exception:
                log.exception("signing keys: reloading failed, the current ring stays")

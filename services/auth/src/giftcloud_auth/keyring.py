"""Token-signing keys and their rotation.

A new key is published in the JWKS at once but signs only from ``activates_at`` (later
than every service's JWKS cache can be stale); the keys it replaces stay published until
``retires_at``, when the last token they signed has expired.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from giftcloud_core.tokens import TokenSigner


@dataclass(frozen=True)
class RingKey:
    signer: TokenSigner
    activates_at: datetime
    retires_at: datetime | None


class KeyRing:
    """The keys auth publishes, and the one it signs with now."""

    def __init__(self, keys: list[RingKey]) -> None:
        if not keys:
            raise ValueError("a key ring needs at least one key")
        self.keys = sorted(keys, key=lambda k: k.activates_at)

    def published(self, now: datetime) -> list[RingKey]:
        return [k for k in self.keys if k.retires_at is None or k.retires_at > now]

    def active(self, now: datetime) -> TokenSigner:
        """The newest key that has begun signing (the oldest published one before any has)."""
        live = self.published(now) or self.keys[-1:]
        started = [k for k in live if k.activates_at <= now]
        return (started[-1] if started else live[0]).signer

    def jwks(self, now: datetime | None = None) -> dict[str, Any]:
        moment = now or datetime.now(tz=self.keys[0].activates_at.tzinfo)
        return {"keys": [k.signer.public_jwk for k in self.published(moment)]}

    @staticmethod
    def retirement(activates_at: datetime, token_lifetime_seconds: int) -> datetime:
        """When keys replaced by one activating at ``activates_at`` may leave the JWKS."""
        return activates_at + timedelta(seconds=token_lifetime_seconds + 60)

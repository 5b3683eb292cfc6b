"""Failed sign-ins counted per account, per account from an address, and per address. The
lockout is of the account *from this address*, as Keycloak's: whoever guesses locks himself
out, not the account's owner elsewhere, who meets a progressive delay of at most a minute.
After a quarter of an hour without a failure the count starts again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from giftcloud_core.clock import now
from giftcloud_core.db import Database
from giftcloud_core.settings import AuthSettings
from sqlalchemy import case, delete, or_
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from giftcloud_auth.errors import AccountLocked, SignInThrottled
from giftcloud_auth.models import SignInFailures

#: a lockout that lasts until an admin lifts it
FOREVER = datetime(9999, 1, 1, tzinfo=UTC)
QUIET = timedelta(minutes=15)


def _account(name: str) -> str:
    return f"user:{name}"


def _pair(name: str, address: str) -> str:
    """The failures of one account from one address (where a lockout lands)."""
    return f"user:{name}|{address}"  # '|' is in no username and no address


def _origin(address: str) -> str:
    return f"address:{address}"


def _wait_seconds(row: SignInFailures | None, after: int, at: datetime, most: int = 3600) -> int:
    """Seconds an account or address must still wait before its next attempt."""
    if row is None or row.failures < after or row.last_failure_at < at - QUIET:
        return 0
    backoff = min(2 ** (row.failures - after), most)
    ready = row.last_failure_at + timedelta(seconds=backoff)
    return max(0, int((ready - at).total_seconds() + 0.999))


class Throttle:
    def __init__(self, config: AuthSettings, db: Database) -> None:
        self.config = config
        self.db = db
        self._pruned_at = datetime.min.replace(tzinfo=UTC)

    async def refusal(self, name: str, address: str) -> AccountLocked | SignInThrottled | None:
        """Why an attempt may not even be tried now, or None."""
        at = now()
        async with self.db.session() as session:
            account = await session.get(SignInFailures, _account(name))
            pair = await session.get(SignInFailures, _pair(name, address))
            origin = await session.get(SignInFailures, _origin(address))
        if pair is not None and pair.locked_until and pair.locked_until > at:
            until = (
                "until an admin unlocks it"
                if pair.locked_until == FOREVER
                else f"until {pair.locked_until:%Y-%m-%d %H:%M} UTC"
            )
            return AccountLocked(until)
        if (wait := _wait_seconds(pair, self.config.throttle_after, at)) or (
            wait := _wait_seconds(account, self.config.throttle_after, at, most=60)
        ):
            return SignInThrottled(wait, "account")
        if wait := _wait_seconds(origin, self.config.address_throttle_after, at):
            return SignInThrottled(wait, "address")
        return None

    async def failed(self, name: str, address: str) -> None:
        """One more failure of the account, of the account from this address, and of the
        address; the pair locked once it reaches ``lockout_after``."""
        at = now()
        lock_for = self.config.lockout_minutes
        pair = _pair(name, address)
        async with self.db.session() as session:
            for key in (_account(name), pair, _origin(address)):
                statement = insert(SignInFailures).values(key=key, failures=1, last_failure_at=at)
                stale = col(SignInFailures.last_failure_at) < at - QUIET
                expired = col(SignInFailures.locked_until) < at
                await session.exec(
                    statement.on_conflict_do_update(
                        index_elements=["key"],
                        set_={
                            "failures": case((stale, 1), else_=SignInFailures.failures + 1),
                            "last_failure_at": at,
                            "locked_until": case(
                                (expired, None), else_=col(SignInFailures.locked_until)
                            ),
                        },
                    )
                )
            row = await session.get(SignInFailures, pair)
            if (
                row is not None
                and row.failures >= self.config.lockout_after
                and (row.locked_until is None or row.locked_until <= at)
            ):
                row.locked_until = at + timedelta(minutes=lock_for) if lock_for else FOREVER
                session.add(row)
            if self._pruned_at < at - timedelta(minutes=1):  # names sprayed once, long ago
                self._pruned_at = at
                await session.exec(
                    delete(SignInFailures).where(
                        col(SignInFailures.last_failure_at) < at - timedelta(days=1),
                        or_(
                            col(SignInFailures.locked_until).is_(None),
                            col(SignInFailures.locked_until) < at,
                        ),
                    )
                )

    async def succeeded(self, session: AsyncSession, name: str, address: str) -> None:
        """A good sign-in clears the account's count, and the address's once it is quiet."""
        await session.exec(
            delete(SignInFailures).where(
                col(SignInFailures.key).in_((_account(name), _pair(name, address)))
            )
        )
        origin = await session.get(SignInFailures, _origin(address))
        if origin is not None and origin.last_failure_at < now() - QUIET:
            await session.delete(origin)

    async def forget_account(self, session: AsyncSession, name: str) -> None:
        """Lift every count and lockout of an account (an admin's unlock, a password reset)."""
        await session.exec(
            delete(SignInFailures).where(
                or_(
                    col(SignInFailures.key) == _account(name),
                    col(SignInFailures.key).startswith(f"{_account(name)}|", autoescape=True),
                )
            )
        )

    async def locked_accounts(self, session: AsyncSession) -> set[str]:
        """The accounts locked from some address now."""
        rows = await session.exec(
            select(SignInFailures).where(col(SignInFailures.locked_until) > now())
        )
        return {row.key.removeprefix("user:").split("|", 1)[0] for row in rows.all()}

"""auth: accounts, sign-in (passwords, refresh tokens, machine credentials), projects and
their members and networks, signing keys. Every change and every sign-in, good or bad, is
an audit record committed in the same transaction (the outbox) and published after."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from giftcloud_core.bus import Bus
from giftcloud_core.db import Database
from giftcloud_core.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from giftcloud_core.events import AuditRecorded, Event, ProjectCreated, ProjectUpdated, parse_event
from giftcloud_core.logs import correlation_id
from giftcloud_core.network import InvalidNetwork, normalise_networks
from giftcloud_core.settings import Settings
from giftcloud_core.tokens import (
    ROLE_RANK,
    Principal,
    TokenSigner,
    generate_private_key_pem,
    sign_in_subject,
    subject_digest,
)
from sqlalchemy import case, delete, func, or_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from giftcloud_auth.errors import AccountDisabled, AccountLocked, SignInRefused, SignInThrottled
from giftcloud_auth.keyring import KeyRing, RingKey
from giftcloud_auth.models import (
    Client,
    ClientGrant,
    Membership,
    OidcRequest,
    OneTimeLink,
    OutboxEvent,
    Project,
    RefreshToken,
    Revocation,
    SignInFailures,
    SigningKey,
    SiteSetting,
    User,
)
from giftcloud_auth.oidc import Identity, OidcClient, pkce_pair, safe_next, username_from
from giftcloud_auth.passwords import WeakPassword, check_password
from giftcloud_auth.schemas import (
    ClientCreate,
    InviteAccept,
    InviteCreate,
    KeyCreate,
    KeyCreated,
    KeyPublic,
    MemberAdd,
    MemberPublic,
    OneTimeLinkPublic,
    ProjectCreate,
    ProjectPublic,
    TokenResponse,
    UserCreate,
    UserPublic,
    UserUpdate,
)

log = logging.getLogger(__name__)

SITE_NETWORKS = "site_networks"
Outcome = Literal["success", "denied", "failure"]
#: a lockout that lasts until an admin lifts it
FOREVER = datetime(9999, 1, 1, tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)


def digest(secret: str) -> str:
    """How a random secret (refresh token, key, link) is kept: its SHA-256."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _split(text: str | None) -> list[str]:
    return [item for item in (text or "").split(",") if item]


def _networks(values: Sequence[str]) -> tuple[str, ...]:
    try:
        return normalise_networks(values)
    except InvalidNetwork as exc:
        raise BadRequest(str(exc)) from exc


def _policy(password: str, username: str) -> str:
    try:
        return check_password(password, username=username)
    except WeakPassword as exc:
        raise BadRequest(str(exc)) from exc


class AuthService:
    def __init__(self, settings: Settings, db: Database, bus: Bus) -> None:
        self.settings = settings
        self.config = settings.auth
        self.db = db
        self.bus = bus
        self.hasher = PasswordHasher()  # argon2id
        # a constant-time answer for unknown users: verify against a real hash
        self._dummy_hash = self.hasher.hash(secrets.token_hex(16))
        self._ring: KeyRing | None = None
        self._relay_lock = asyncio.Lock()
        self._kick = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._revoked: tuple[float, dict[str, int]] = (-1e9, {})
        self._oidc: OidcClient | None = None
        self._pruned_at = datetime.min.replace(tzinfo=UTC)

    # --- lifecycle --------------------------------------------------------------------

    @property
    def ring(self) -> KeyRing:
        if self._ring is None:
            raise RuntimeError("AuthService.start() was not called")
        return self._ring

    @property
    def signer(self) -> TokenSigner:
        """The key that signs now."""
        return self.ring.active(_now())

    def jwks(self) -> dict[str, object]:
        return self.ring.jwks(_now())

    async def start(self) -> None:
        await self.load_signing_keys()
        await self._ensure_admin()
        await self._announce_projects()
        self._tasks = [
            asyncio.create_task(self._relay_forever()),
            asyncio.create_task(self._reload_keys_forever()),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _relay_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), self.config.outbox_interval_seconds)
            self._kick.clear()
            await self.relay_outbox()

    async def _reload_keys_forever(self) -> None:
        while True:  # another replica may have rotated the keys
            await asyncio.sleep(10)
            with contextlib.suppress(Exception):
                await self.load_signing_keys()

    async def relay_outbox(self) -> int:
        """Publish the events committed but not yet published, oldest first, and delete each
        once the broker has confirmed it; returns how many went. A failed publish leaves the
        rest for the next round (a repeat is harmless: consumers are idempotent)."""
        async with self._relay_lock:
            sent = 0
            try:
                async with self.db.session() as session:
                    rows = (
                        await session.exec(
                            select(OutboxEvent)
                            .order_by(col(OutboxEvent.id))
                            .limit(500)
                            .with_for_update(skip_locked=True)  # replicas share the work
                        )
                    ).all()
                    for row in rows:
                        await self.bus.publish(parse_event(row.body.encode()))
                        await session.delete(row)
                        await session.flush()
                        sent += 1
            except Exception as exc:
                log.warning(
                    "outbox: %d event(s) published, the rest wait for the next round: %s",
                    sent,
                    exc,
                )
                return 0  # the deletions were rolled back with the failure
            return sent

    def _emit(self, session: AsyncSession, event: Event) -> None:
        """Publish ``event`` once the transaction of ``session`` commits (the outbox)."""
        session.add(OutboxEvent(body=event.model_dump_json()))
        self._kick.set()

    def _audit(
        self,
        session: AsyncSession,
        action: str,
        *,
        actor: str,
        address: str,
        outcome: Outcome = "success",
        project: str = "",
        target: str = "",
        detail: str = "",
    ) -> None:
        self._emit(
            session,
            AuditRecorded(
                project=project,
                correlation_id=correlation_id.get() or "-",
                actor=actor,
                action=action,
                outcome=outcome,
                target=target,
                address=address,
                detail=detail,
            ),
        )

    # --- signing keys -----------------------------------------------------------------

    async def load_signing_keys(self) -> None:
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
                    activates_at=_now() - timedelta(seconds=1),
                )
                session.add(first)
                stored = [first]
        self._ring = KeyRing(
            [
                RingKey(TokenSigner(k.private_pem, issuer, audience), k.activates_at, k.retires_at)
                for k in stored
            ]
        )

    async def rotate_signing_key(self) -> SigningKey:
        """A new signing key: published now, signing after ``key_publish_seconds``; the keys
        it replaces leave the JWKS once the last token they signed has expired."""
        if self.config.signing_key is not None:
            raise RuntimeError(
                "the signing key comes from GIFTCLOUD_AUTH__SIGNING_KEY: rotate it there"
            )
        pem = generate_private_key_pem()
        signer = TokenSigner(pem, self.config.issuer, self.config.audience)
        activates = _now() + timedelta(seconds=self.config.key_publish_seconds)
        retires = KeyRing.retirement(activates, self.config.access_token_minutes * 60)
        key = SigningKey(kid=signer.kid, private_pem=pem, activates_at=activates)
        async with self.db.session() as session:
            await session.exec(
                update(SigningKey)
                .where(col(SigningKey.retires_at).is_(None))
                .values(retires_at=retires)
            )
            session.add(key)
            self._audit(
                session, "auth.signing-key-rotate", actor="operator", address="", target=key.kid
            )
            await session.exec(  # long retired keys go
                delete(SigningKey).where(col(SigningKey.retires_at) < _now() - timedelta(days=1))
            )
        await self.load_signing_keys()
        return key

    # --- first start ------------------------------------------------------------------

    async def _ensure_admin(self) -> None:
        async with self.db.session() as session:
            if (await session.exec(select(User).limit(1))).first() is not None:
                return
            given = self.settings.admin_password
            password = given.get_secret_value() if given else secrets.token_urlsafe(18)
            try:
                check_password(password, username="admin")
            except WeakPassword as exc:
                raise RuntimeError(f"GIFTCLOUD_ADMIN_PASSWORD is too weak: {exc}") from None
            session.add(
                User(username="admin", password_hash=self.hasher.hash(password), site_roles="admin")
            )
            if given is None:  # before the commit: no admin whose password nobody has
                path = _write_secret(self.settings.data_dir / "admin-password", password)
        if given is None:
            # never the password itself: stdout ends up in container logs
            print(
                f"giftcloud: created user 'admin'; its password is in {path} (readable by you"
                " only): read it, sign in, change it, delete the file",
                flush=True,
            )
        log.info("created the first user 'admin'")

    async def _announce_projects(self) -> None:
        """Re-publish every project at start: consumers are idempotent, and one whose database
        was rebuilt learns the projects again."""
        async with self.db.session() as session:
            projects = (await session.exec(select(Project))).all()
            default = await self._site_networks(session)
        for project in projects:
            await self.bus.publish(self._state(project, default, "startup"))

    def _state(self, project: Project, default: list[str], cid: str) -> ProjectUpdated:
        networks = _split(project.networks) if project.networks is not None else default
        return ProjectUpdated(
            project=project.name, title=project.title, networks=tuple(networks), correlation_id=cid
        )

    # --- sign-in ----------------------------------------------------------------------

    async def _failures(self, session: AsyncSession, key: str) -> SignInFailures | None:
        return await session.get(SignInFailures, key)

    def _wait_seconds(
        self, row: SignInFailures | None, after: int, now: datetime, most: int = 3600
    ) -> int:
        """Seconds an account or address must still wait before its next attempt."""
        if row is None or row.failures < after or row.last_failure_at < now - timedelta(minutes=15):
            return 0
        backoff = min(2 ** (row.failures - after), most)
        ready = row.last_failure_at + timedelta(seconds=backoff)
        return max(0, int((ready - now).total_seconds() + 0.999))

    async def _count_failure(self, name: str, address: str) -> None:
        """One more failure of the account name, of the account from this address, and of
        the address. After a quarter of an hour without one the count starts again (an
        expired lockout with it). The lockout is of the account *from this address*, as
        Keycloak's: whoever guesses locks himself out, not the account's owner elsewhere,
        who meets a progressive delay of at most a minute."""
        now = _now()
        quiet = now - timedelta(minutes=15)
        lock_for = self.config.lockout_minutes
        pair = _pair_key(name, address)
        async with self.db.session() as session:
            for key in (f"user:{name}", pair, f"address:{address}"):
                statement = insert(SignInFailures).values(key=key, failures=1, last_failure_at=now)
                stale = col(SignInFailures.last_failure_at) < quiet
                expired = col(SignInFailures.locked_until) < now
                await session.exec(
                    statement.on_conflict_do_update(
                        index_elements=["key"],
                        set_={
                            "failures": case((stale, 1), else_=SignInFailures.failures + 1),
                            "last_failure_at": now,
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
                and (row.locked_until is None or row.locked_until <= now)
            ):
                row.locked_until = now + timedelta(minutes=lock_for) if lock_for else FOREVER
                session.add(row)
            if self._pruned_at < now - timedelta(minutes=1):  # names sprayed once, long ago
                self._pruned_at = now
                await session.exec(
                    delete(SignInFailures).where(
                        col(SignInFailures.last_failure_at) < now - timedelta(days=1),
                        or_(
                            col(SignInFailures.locked_until).is_(None),
                            col(SignInFailures.locked_until) < now,
                        ),
                    )
                )

    async def password_grant(self, username: str, password: str, address: str) -> TokenResponse:
        name = username.strip().lower()[:128]
        now = _now()
        async with self.db.session() as session:
            account = await self._failures(session, f"user:{name}")
            pair = await self._failures(session, _pair_key(name, address))
            origin = await self._failures(session, f"address:{address}")
            user = await _user(session, name)
        refusal: AccountLocked | SignInThrottled | None = None
        if pair is not None and pair.locked_until and pair.locked_until > now:
            until = (
                "until an admin unlocks it"
                if pair.locked_until == FOREVER
                else f"until {pair.locked_until:%Y-%m-%d %H:%M} UTC"
            )
            refusal = AccountLocked(until)
        elif (wait := self._wait_seconds(pair, self.config.throttle_after, now)) or (
            wait := self._wait_seconds(account, self.config.throttle_after, now, most=60)
        ):
            refusal = SignInThrottled(wait, "account")
        elif wait := self._wait_seconds(origin, self.config.address_throttle_after, now):
            refusal = SignInThrottled(wait, "address")
        if refusal is not None:  # a throttled attempt counts: hammering locks the account
            await self._count_failure(name, address)
            await self._record_sign_in(name, address, "denied", str(refusal))
            raise refusal
        stored = user.password_hash if user is not None and user.password_hash else None
        try:
            self.hasher.verify(stored or self._dummy_hash, password)
            ok = stored is not None
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok or user is None:
            await self._count_failure(name, address)
            await self._record_sign_in(name, address, "failure", "wrong username or password")
            raise SignInRefused()
        if user.disabled:
            await self._record_sign_in(name, address, "denied", "the account is disabled")
            raise AccountDisabled()
        async with self.db.session() as session:
            await session.exec(
                delete(SignInFailures).where(
                    col(SignInFailures.key).in_((f"user:{name}", _pair_key(name, address)))
                )
            )
            if origin is not None and origin.last_failure_at < now - timedelta(minutes=15):
                await session.exec(
                    delete(SignInFailures).where(col(SignInFailures.key) == f"address:{address}")
                )
            if self.hasher.check_needs_rehash(user.password_hash):
                user.password_hash = self.hasher.hash(password)
                session.add(user)
            response = await self._tokens_for(session, user, family=uuid.uuid4().hex)
            self._audit(session, "auth.sign-in", actor=user.username, address=address)
        return response

    async def _record_sign_in(self, name: str, address: str, outcome: Outcome, detail: str) -> None:
        async with self.db.session() as session:
            self._audit(
                session, "auth.sign-in", actor=name, address=address, outcome=outcome, detail=detail
            )

    async def _roles(self, session: AsyncSession, username: str) -> dict[str, str]:
        rows = await session.exec(select(Membership).where(Membership.username == username))
        return {m.project: m.role for m in rows.all()}

    async def _access_for(self, session: AsyncSession, user: User, family: str) -> tuple[str, int]:
        """An access token of a sign-in (``family``) with the user's roles as they are now,
        and its lifetime."""
        lifetime = self.config.access_token_minutes * 60
        access = self.signer.sign(
            user.username,
            site_roles=user.roles(),
            projects=await self._roles(session, user.username),
            lifetime_seconds=lifetime,
            sign_in=family,
        )
        return access, lifetime

    async def _tokens_for(self, session: AsyncSession, user: User, family: str) -> TokenResponse:
        """An access token with the user's roles as they are now, and the next refresh token."""
        access, lifetime = await self._access_for(session, user, family)
        refresh = secrets.token_urlsafe(32)
        refresh_lifetime = timedelta(days=self.config.refresh_token_days)
        session.add(
            RefreshToken(
                token_hash=digest(refresh),
                family=family,
                username=user.username,
                expires_at=_now() + refresh_lifetime,
            )
        )
        return TokenResponse(
            access_token=access,
            expires_in=lifetime,
            refresh_token=refresh,
            refresh_expires_in=int(refresh_lifetime.total_seconds()),
        )

    async def refresh_grant(self, token: str, address: str) -> TokenResponse:
        """The next token pair for a refresh token, used once; a token used twice was copied:
        the whole family (every token of that sign-in) is revoked."""
        now = _now()
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
            user = await _user(session, row.username)
            if row.used_at is not None and row.revoked_at is None:
                await self._revoke_family(session, row.family, now)
                self._audit(
                    session,
                    "auth.refresh",
                    actor=row.username,
                    address=address,
                    outcome="denied",
                    detail="a refresh token was used twice: every token of its sign-in revoked",
                )
                refusal: Exception = Unauthorized(
                    "this refresh token was used before: the sign-in it belongs to is ended"
                )
            elif row.revoked_at is not None or row.used_at is not None:
                refusal = Unauthorized("this refresh token is revoked; sign in again")
            elif row.expires_at <= now:
                refusal = Unauthorized("this refresh token has expired; sign in again")
            elif user is None or user.disabled:
                refusal = Unauthorized("this account is disabled; sign in again")
            else:
                row.used_at = now
                session.add(row)
                response = await self._tokens_for(session, user, family=row.family)
                self._audit(session, "auth.refresh", actor=user.username, address=address)
                return response
        raise refusal  # after the commit: a revoked family stays revoked

    async def _revoke_family(self, session: AsyncSession, family: str, now: datetime) -> None:
        """End a sign-in: its refresh tokens, and the access tokens issued to it."""
        await session.exec(
            update(RefreshToken)
            .where(col(RefreshToken.family) == family, col(RefreshToken.revoked_at).is_(None))
            .values(revoked_at=now)
        )
        await self._revoke_access(session, sign_in_subject(family))

    async def _revoke_sessions(self, session: AsyncSession, username: str) -> None:
        await session.exec(
            update(RefreshToken)
            .where(col(RefreshToken.username) == username, col(RefreshToken.revoked_at).is_(None))
            .values(revoked_at=_now())
        )

    async def _revoke_access(self, session: AsyncSession, subject: str) -> None:
        """Refuse the subject's access tokens issued until now (the services learn it within
        ``revocation_poll_seconds``)."""
        moment = _now()
        statement = insert(Revocation).values(subject=subject, revoked_before=moment)
        await session.exec(
            statement.on_conflict_do_update(
                index_elements=["subject"], set_={"revoked_before": moment}
            )
        )
        self._revoked = (-1e9, {})

    async def revocations(self) -> dict[str, int]:
        """The revocation list the services check tokens against (subjects hashed), of the
        last token lifetime (older tokens have expired anyway); cached for a second."""
        loop = asyncio.get_running_loop()
        fetched, cached = self._revoked
        if loop.time() - fetched < 1:
            return cached
        horizon = _now() - timedelta(minutes=self.config.access_token_minutes, seconds=60)
        async with self.db.session() as session:
            await session.exec(delete(Revocation).where(col(Revocation.revoked_before) < horizon))
            rows = (await session.exec(select(Revocation))).all()
        revoked = {
            subject_digest(r.subject): int(r.revoked_before.timestamp() * 1000) for r in rows
        }
        self._revoked = (loop.time(), revoked)
        return revoked

    async def sign_out(self, token: str, address: str) -> None:
        """Revoke the sign-in a refresh token belongs to (every token of its family)."""
        async with self.db.session() as session:
            row = await session.get(RefreshToken, digest(token))
            if row is None:
                return  # nothing to end: the same answer as for a real one
            await self._revoke_family(session, row.family, _now())
            self._audit(session, "auth.sign-out", actor=row.username, address=address)

    async def client_grant(self, client_id: str, secret: str, address: str) -> TokenResponse:
        """OAuth2 client credentials (and API keys): an access token with the credential's
        grants, each no more than its creator holds now."""
        now = _now()
        async with self.db.session() as session:
            client = await session.get(Client, client_id[:64])
            ok = client is not None and hmac.compare_digest(client.secret_hash, digest(secret))
            creator = await _user(session, client.created_by) if client is not None else None
            refusal = None
            if client is None or not ok:
                refusal = "unknown client or wrong secret"
            elif client.revoked_at is not None:
                refusal = "this key was revoked"
            elif client.expires_at is not None and client.expires_at <= now:
                refusal = "this key has expired"
            elif creator is None or creator.disabled:
                refusal = "the account that made this key is disabled or deleted"
            if refusal is not None or client is None or creator is None:
                self._audit(
                    session,
                    "auth.key-use",
                    actor=client_id[:64],
                    address=address,
                    outcome="denied",
                    target=client_id[:64],
                    detail=refusal or "",
                )
            else:
                response = await self._client_token(session, client, creator, now, address)
                return response
        raise Unauthorized(refusal or "refused")  # after the commit: the refusal is recorded

    async def _client_token(
        self, session: AsyncSession, client: Client, creator: User, now: datetime, address: str
    ) -> TokenResponse:
        held = await self._roles(session, creator.username)
        admin = "admin" in creator.roles()
        grants = (
            await session.exec(select(ClientGrant).where(ClientGrant.client_id == client.id))
        ).all()
        projects = {
            g.project: role
            for g in grants
            if (role := _lesser(g.role, "owner" if admin else held.get(g.project))) is not None
        }
        client.last_used_at = now
        session.add(client)
        lifetime = self.config.access_token_minutes * 60
        token = self.signer.sign(
            client.id,
            site_roles=[],
            projects=projects,
            lifetime_seconds=lifetime,
            kind="client",
            networks=_split(client.networks),
            creator=creator.username,
        )
        self._audit(
            session,
            "auth.key-use",
            actor=f"key {client.id} of {creator.username}",
            address=address,
            project=next(iter(projects)) if len(projects) == 1 else "",
            target=client.id,
        )
        return TokenResponse(access_token=token, expires_in=lifetime)

    # --- single sign-on ----------------------------------------------------------------

    @property
    def oidc(self) -> OidcClient:
        if self._oidc is None:
            self._oidc = OidcClient(self.config)  # NotFound when SSO is not configured
        return self._oidc

    def sso_redirect_uri(self) -> str:
        return f"{self.settings.ingest.public_url.rstrip('/')}/auth/oidc/callback"

    async def sso_begin(self, next_path: str | None) -> tuple[str, str]:
        """The provider's sign-in URL, and the state to bind to the browser."""
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        verifier, challenge = pkce_pair()
        url = await self.oidc.authorization_url(
            state=state, nonce=nonce, challenge=challenge, redirect_uri=self.sso_redirect_uri()
        )
        async with self.db.session() as session:
            await session.exec(delete(OidcRequest).where(col(OidcRequest.expires_at) < _now()))
            session.add(
                OidcRequest(
                    state_hash=digest(state),
                    verifier=verifier,
                    nonce=nonce,
                    next_path=safe_next(next_path),
                    expires_at=_now() + timedelta(minutes=10),
                )
            )
        return url, state

    async def sso_finish(
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
        if request is None or request.expires_at <= _now():
            raise Unauthorized("this sign-in is unknown or took too long: start again")
        identity = await self.oidc.identify(
            code=code,
            verifier=request.verifier,
            nonce=request.nonce,
            redirect_uri=self.sso_redirect_uri(),
        )
        async with self.db.session() as session:
            user = await self._user_of(session, identity, address)
            if user is None or user.disabled:
                self._audit(
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
                response = await self._tokens_for(session, user, family=uuid.uuid4().hex)
                self._audit(
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
        """The account of an identity: linked before, or the one with its verified email
        (linked now), or a new one without roles (when the site makes accounts for SSO)."""
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
        while await _user(session, name) is not None:
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
        self._audit(
            session,
            "auth.user-create",
            actor="single sign-on",
            address=address,
            target=name,
            detail=f"first sign-in via {identity.issuer}",
        )
        return user

    async def session_access(self, refresh_token: str) -> TokenResponse:
        """An access token (the user's roles as they are now) for a live browser session,
        whose token is not used up: a session's pages ask for tokens at once, in several
        tabs, and its cookie never reaches a script (rotation guards tokens that travel)."""
        live = await self._live_session(refresh_token)
        if live is None:
            raise Unauthorized("not signed in (the session has ended): sign in again")
        user, family = live
        async with self.db.session() as session:
            access, lifetime = await self._access_for(session, user, family)
        return TokenResponse(access_token=access, expires_in=lifetime)

    async def session_user(self, refresh_token: str) -> User | None:
        """Who a browser session (its refresh token, not used here) belongs to, if it is live."""
        live = await self._live_session(refresh_token)
        return None if live is None else live[0]

    async def _live_session(self, refresh_token: str) -> tuple[User, str] | None:
        """The user of a live browser session and its sign-in (refresh family)."""
        async with self.db.session() as session:
            row = await session.get(RefreshToken, digest(refresh_token))
            if row is None or row.used_at or row.revoked_at or row.expires_at <= _now():
                return None
            user = await _user(session, row.username)
        return None if user is None or user.disabled else (user, row.family)

    # --- accounts ---------------------------------------------------------------------

    async def me(self, caller: Principal) -> User | None:
        async with self.db.session() as session:
            return await _user(session, caller.subject)

    def _public(self, user: User, locked: bool = False) -> UserPublic:
        return UserPublic(
            username=user.username,
            site_roles=user.roles(),
            email=user.email,
            disabled=user.disabled,
            locked=locked,
            single_sign_on=bool(user.oidc_subject),
            created_at=user.created_at,
        )

    async def list_users(self) -> list[UserPublic]:
        now = _now()
        async with self.db.session() as session:
            users = (await session.exec(select(User).order_by(col(User.username)))).all()
            locked = {
                row.key.removeprefix("user:").split("|", 1)[0]
                for row in (
                    await session.exec(
                        select(SignInFailures).where(col(SignInFailures.locked_until) > now)
                    )
                ).all()
            }
        return [self._public(u, u.username in locked) for u in users]

    async def create_user(self, data: UserCreate, caller: Principal, address: str) -> UserPublic:
        password_hash = ""
        if data.password is not None:
            password_hash = self.hasher.hash(_policy(data.password, data.username))
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
                self._audit(
                    session,
                    "auth.user-create",
                    actor=caller.name,
                    address=address,
                    target=user.username,
                    detail=f"site roles: {user.site_roles or 'none'}",
                )
        except IntegrityError as exc:  # the same name in any case
            raise Conflict(f"user {data.username!r} exists already") from exc
        return self._public(user)

    async def _admins(self, session: AsyncSession) -> list[str]:
        users = (await session.exec(select(User).where(col(User.disabled).is_(False)))).all()
        return [u.username for u in users if "admin" in u.roles()]

    async def update_user(
        self, username: str, data: UserUpdate, caller: Principal, address: str
    ) -> UserPublic:
        async with self.db.session() as session:
            user = await _user(session, username)
            if user is None:
                raise NotFound(f"no user {username!r}")
            changes = []
            losing_admin = (data.disabled is True) or (
                data.site_roles is not None and "admin" not in data.site_roles
            )
            if losing_admin and await self._admins(session) == [user.username]:
                raise Conflict("the last admin cannot be disabled or lose the admin role")
            if data.disabled is not None and data.disabled != user.disabled:
                user.disabled = data.disabled
                changes.append("disabled" if data.disabled else "enabled")
                if data.disabled:  # at once: no sessions, no tokens, no keys
                    await self._revoke_sessions(session, user.username)
                    await self._revoke_access(session, user.username)
            if data.site_roles is not None:
                user.site_roles = ",".join(sorted(set(data.site_roles)))
                changes.append(f"site roles: {user.site_roles or 'none'}")
                await self._revoke_access(session, user.username)  # roles are in tokens
            if data.email is not None:
                user.email = data.email
                changes.append("email")
            session.add(user)
            self._audit(
                session,
                "auth.user-update",
                actor=caller.name,
                address=address,
                target=user.username,
                detail="; ".join(changes),
            )
        return self._public(user)

    async def delete_user(self, username: str, caller: Principal, address: str) -> None:
        async with self.db.session() as session:
            user = await _user(session, username)
            if user is None:
                raise NotFound(f"no user {username!r}")
            if await self._admins(session) == [user.username]:
                raise Conflict("the last admin cannot be deleted")
            name = user.username
            await self._revoke_sessions(session, name)
            await self._revoke_access(session, name)
            await session.exec(
                update(Client)
                .where(col(Client.created_by) == name, col(Client.revoked_at).is_(None))
                .values(revoked_at=_now())
            )
            for table, column in (
                (Membership, Membership.username),
                (RefreshToken, RefreshToken.username),
                (OneTimeLink, OneTimeLink.username),
            ):
                await session.exec(delete(table).where(col(column) == name))
            await session.delete(user)
            self._audit(
                session, "auth.user-delete", actor=caller.name, address=address, target=name
            )

    async def unlock(self, username: str, caller: Principal, address: str) -> None:
        name = username.lower()
        async with self.db.session() as session:
            await session.exec(
                delete(SignInFailures).where(
                    or_(
                        col(SignInFailures.key) == f"user:{name}",
                        col(SignInFailures.key).startswith(f"user:{name}|", autoescape=True),
                    )
                )
            )
            self._audit(
                session, "auth.user-unlock", actor=caller.name, address=address, target=name
            )

    async def change_password(
        self, caller: Principal, current: str, new: str, address: str
    ) -> None:
        async with self.db.session() as session:
            user = await _user(session, caller.subject)
            try:
                if user is None or not user.password_hash:
                    raise VerificationError
                self.hasher.verify(user.password_hash, current)
            except (VerificationError, InvalidHashError):
                raise SignInRefused("the current password is wrong") from None
            user.password_hash = self.hasher.hash(_policy(new, user.username))
            user.password_changed_at = _now()
            session.add(user)
            await self._revoke_sessions(session, user.username)
            await self._revoke_access(session, user.username)
            self._audit(session, "auth.password-change", actor=user.username, address=address)

    async def _link(
        self, session: AsyncSession, link: OneTimeLink, secret: str, path: str
    ) -> OneTimeLinkPublic:
        session.add(link)
        base = self.settings.ingest.public_url.rstrip("/")
        return OneTimeLinkPublic(
            url=f"{base}{path}?token={secret}", token=secret, expires_at=link.expires_at
        )

    async def reset_link(self, username: str, caller: Principal, address: str) -> OneTimeLinkPublic:
        secret = secrets.token_urlsafe(32)
        async with self.db.session() as session:
            user = await _user(session, username)
            if user is None:
                raise NotFound(f"no user {username!r}")
            self._audit(
                session,
                "auth.password-reset-link",
                actor=caller.name,
                address=address,
                target=user.username,
            )
            return await self._link(
                session,
                OneTimeLink(
                    token_hash=digest(secret),
                    kind="reset",
                    created_by=caller.subject,
                    username=user.username,
                    expires_at=_now() + timedelta(hours=self.config.reset_hours),
                ),
                secret,
                "/auth/reset",
            )

    async def _take_link(self, session: AsyncSession, secret: str, kind: str) -> OneTimeLink:
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
        if link.expires_at <= _now():
            raise Conflict("this link has expired: ask for a new one")
        link.used_at = _now()
        session.add(link)
        return link

    async def reset_password(self, secret: str, new: str, address: str) -> None:
        async with self.db.session() as session:
            link = await self._take_link(session, secret, "reset")
            user = await _user(session, link.username)
            if user is None:
                raise NotFound("the account of this link no longer exists")
            user.password_hash = self.hasher.hash(_policy(new, user.username))
            user.password_changed_at = _now()
            session.add(user)
            await self._revoke_sessions(session, user.username)
            await self._revoke_access(session, user.username)
            await session.exec(
                delete(SignInFailures).where(col(SignInFailures.key) == f"user:{user.username}")
            )
            self._audit(session, "auth.password-reset", actor=user.username, address=address)

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
            self._audit(
                session,
                "auth.invite-create",
                actor=caller.name,
                address=address,
                project=data.project or "",
                target=data.email,
                detail=f"role {data.role or 'none'}; site roles {','.join(data.site_roles) or 'none'}",
            )
            return await self._link(
                session,
                OneTimeLink(
                    token_hash=digest(secret),
                    kind="invite",
                    created_by=caller.subject,
                    project=data.project or "",
                    role=data.role or "",
                    site_roles=",".join(sorted(set(data.site_roles))),
                    email=data.email,
                    expires_at=_now() + timedelta(hours=self.config.invite_hours),
                ),
                secret,
                "/auth/invite",
            )

    async def accept_invite(self, data: InviteAccept, address: str) -> UserPublic:
        password_hash = self.hasher.hash(_policy(data.password, data.username))
        try:
            async with self.db.session() as session:
                link = await self._take_link(session, data.token, "invite")
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
                self._audit(
                    session,
                    "auth.invite-accept",
                    actor=user.username,
                    address=address,
                    project=link.project,
                    detail=f"invited by {link.created_by}; role {link.role or 'none'}",
                )
        except IntegrityError as exc:
            raise Conflict(f"the username {data.username!r} is taken: choose another") from exc
        return self._public(user)

    # --- projects, members, networks --------------------------------------------------

    async def _site_networks(self, session: AsyncSession) -> list[str]:
        row = await session.get(SiteSetting, SITE_NETWORKS)
        return _split(row.value if row else "")

    async def create_project(
        self, data: ProjectCreate, caller: Principal, address: str
    ) -> ProjectPublic:
        try:
            async with self.db.session() as session:
                project = Project(name=data.name, title=data.title, created_by=caller.subject)
                session.add(project)
                await session.flush()
                session.add(Membership(project=data.name, username=caller.subject, role="owner"))
                self._emit(
                    session,
                    ProjectCreated(project=data.name, title=data.title, correlation_id=data.name),
                )
                self._emit(
                    session, self._state(project, await self._site_networks(session), data.name)
                )
                self._audit(
                    session,
                    "auth.project-create",
                    actor=caller.name,
                    address=address,
                    project=data.name,
                )
        except IntegrityError as exc:
            raise Conflict(f"project {data.name!r} exists already") from exc
        await self.relay_outbox()  # now if the broker is there, else on a later round
        return ProjectPublic(name=data.name, title=data.title, role="owner")

    async def project(self, name: str) -> Project:
        async with self.db.session() as session:
            project = await session.get(Project, name)
        if project is None:
            raise NotFound(f"no project {name!r}")
        return project

    async def project_exists(self, project: str) -> bool:
        async with self.db.session() as session:
            return await session.get(Project, project) is not None

    async def update_project(
        self, name: str, title: str, caller: Principal, address: str
    ) -> ProjectPublic:
        async with self.db.session() as session:
            project = await session.get(Project, name)
            if project is None:
                raise NotFound(f"no project {name!r}")
            project.title = title
            session.add(project)
            self._emit(session, self._state(project, await self._site_networks(session), name))
            self._audit(
                session, "auth.project-update", actor=caller.name, address=address, project=name
            )
        return ProjectPublic(name=name, title=title, role=caller.role_on(name))

    async def projects_of(self, caller: Principal) -> list[ProjectPublic]:
        async with self.db.session() as session:
            projects = (await session.exec(select(Project).order_by(col(Project.name)))).all()
            roles = (
                await self._roles(session, caller.subject)
                if caller.kind == "user"
                else dict(caller.projects)
            )
        return [
            ProjectPublic(
                name=p.name,
                title=p.title,
                role=roles.get(p.name) or ("owner" if caller.is_admin else None),
            )
            for p in projects
            if caller.is_admin or p.name in roles
        ]

    async def members(self, project: str) -> list[MemberPublic]:
        async with self.db.session() as session:
            rows = await session.exec(
                select(Membership)
                .where(Membership.project == project)
                .order_by(col(Membership.username))
            )
            return [MemberPublic(username=m.username, role=m.role) for m in rows.all()]

    async def _last_owner(self, session: AsyncSession, project: str, username: str) -> bool:
        owners = (
            await session.exec(
                select(Membership.username).where(
                    Membership.project == project, Membership.role == "owner"
                )
            )
        ).all()
        return list(owners) == [username]

    async def set_member(
        self, project: str, data: MemberAdd, caller: Principal, address: str
    ) -> None:
        """Set a user's role on a project; an unknown user changes nothing, and says nothing."""
        async with self.db.session() as session:
            if await session.get(Project, project) is None:
                raise NotFound(f"no project {project!r}")
            user = await _user(session, data.username)
            if user is None:
                self._audit(
                    session,
                    "auth.member-set",
                    actor=caller.name,
                    address=address,
                    project=project,
                    outcome="failure",
                    detail="no such account: nothing changed",
                )
                return
            existing = await session.get(Membership, (project, user.username))
            if existing is None:
                session.add(Membership(project=project, username=user.username, role=data.role))
            else:
                if (
                    existing.role == "owner"
                    and data.role != "owner"
                    and await self._last_owner(session, project, user.username)
                ):
                    raise Conflict(
                        "the last owner of a project cannot step down: make another owner first"
                    )
                existing.role = data.role
                session.add(existing)
                await self._revoke_access(session, user.username)  # the old role is in tokens
            self._audit(
                session,
                "auth.member-set",
                actor=caller.name,
                address=address,
                project=project,
                target=user.username,
                detail=f"role {data.role}",
            )

    async def remove_member(
        self, project: str, username: str, caller: Principal, address: str
    ) -> None:
        async with self.db.session() as session:
            user = await _user(session, username)
            membership = await session.get(Membership, (project, user.username)) if user else None
            if membership is None:
                return  # the same answer whether the account exists or not
            if membership.role == "owner" and await self._last_owner(
                session, project, membership.username
            ):
                raise Conflict(
                    "the last owner of a project cannot be removed: make another owner first"
                )
            await session.delete(membership)
            await self._revoke_access(session, membership.username)  # at once, not in 15 min
            self._audit(
                session,
                "auth.member-remove",
                actor=caller.name,
                address=address,
                project=project,
                target=membership.username,
            )

    async def project_networks(self, project: str) -> tuple[list[str] | None, list[str]]:
        """The project's own networks (None: the site's default) and the site's default."""
        async with self.db.session() as session:
            row = await session.get(Project, project)
            if row is None:
                raise NotFound(f"no project {project!r}")
            own = _split(row.networks) if row.networks is not None else None
            return own, await self._site_networks(session)

    async def set_project_networks(
        self, project: str, networks: list[str] | None, caller: Principal, address: str
    ) -> None:
        clean = list(_networks(networks)) if networks is not None else None
        async with self.db.session() as session:
            row = await session.get(Project, project)
            if row is None:
                raise NotFound(f"no project {project!r}")
            row.networks = ",".join(clean) if clean is not None else None
            session.add(row)
            self._emit(session, self._state(row, await self._site_networks(session), project))
            self._audit(
                session,
                "auth.networks-set",
                actor=caller.name,
                address=address,
                project=project,
                detail="site default" if clean is None else (", ".join(clean) or "anywhere"),
            )

    async def site_networks(self) -> list[str]:
        async with self.db.session() as session:
            return await self._site_networks(session)

    async def set_site_networks(self, networks: list[str], caller: Principal, address: str) -> None:
        clean = _networks(networks)
        async with self.db.session() as session:
            await session.merge(SiteSetting(key=SITE_NETWORKS, value=",".join(clean)))
            following = (
                await session.exec(select(Project).where(col(Project.networks).is_(None)))
            ).all()
            for project in following:  # the projects that follow the default change with it
                self._emit(session, self._state(project, list(clean), "site-networks"))
            self._audit(
                session,
                "auth.networks-set",
                actor=caller.name,
                address=address,
                detail="site default: " + (", ".join(clean) or "anywhere"),
            )

    # --- machine credentials ----------------------------------------------------------

    def _key_public(self, client: Client, grants: dict[str, str]) -> KeyPublic:
        return KeyPublic(
            id=client.id,
            name=client.name,
            grants=grants,
            created_by=client.created_by,
            created_at=client.created_at,
            expires_at=client.expires_at,
            last_used_at=client.last_used_at,
            revoked_at=client.revoked_at,
            networks=_split(client.networks),
        )

    async def _new_client(
        self,
        session: AsyncSession,
        name: str,
        grants: dict[str, str],
        caller: Principal,
        days: int,
        networks: list[str],
    ) -> KeyCreated:
        client_id = "gck_" + secrets.token_hex(5)
        secret = secrets.token_urlsafe(32)
        client = Client(
            id=client_id,
            name=name,
            secret_hash=digest(secret),
            created_by=caller.subject,
            networks=",".join(_networks(networks)),
            expires_at=_now() + timedelta(days=days),
        )
        session.add(client)
        await session.flush()
        for project, role in grants.items():
            session.add(ClientGrant(client_id=client_id, project=project, role=role))
        public = self._key_public(client, grants)
        return KeyCreated(
            **public.model_dump(),
            key=f"{client_id}_{secret}",
            client_id=client_id,
            client_secret=secret,
        )

    async def create_key(
        self, project: str, data: KeyCreate, caller: Principal, address: str
    ) -> KeyCreated:
        held = caller.require(project)  # a person (the route's Person), never a key
        if ROLE_RANK[data.role] > ROLE_RANK[held]:
            raise Forbidden(f"a key cannot grant more than its maker holds ({held} on {project!r})")
        async with self.db.session() as session:
            if await session.get(Project, project) is None:
                raise NotFound(f"no project {project!r}")
            created = await self._new_client(
                session, data.name, {project: data.role}, caller, data.expires_days, data.networks
            )
            self._audit(
                session,
                "auth.key-create",
                actor=caller.name,
                address=address,
                project=project,
                target=created.id,
                detail=f"role {data.role}",
            )
        return created

    async def create_client(
        self, data: ClientCreate, caller: Principal, address: str
    ) -> KeyCreated:
        grants: dict[str, str] = {g.project: g.role for g in data.grants}
        async with self.db.session() as session:
            for project in grants:
                if await session.get(Project, project) is None:
                    raise NotFound(f"no project {project!r}")
            created = await self._new_client(
                session, data.name, grants, caller, data.expires_days, data.networks
            )
            self._audit(
                session,
                "auth.key-create",
                actor=caller.name,
                address=address,
                target=created.id,
                detail="client for " + ", ".join(f"{p} ({r})" for p, r in grants.items()),
            )
        return created

    async def keys(self, project: str | None, caller: Principal) -> list[KeyPublic]:
        """Keys of a project (its owners and admins see all, others their own), or every
        client (project None, admins)."""
        async with self.db.session() as session:
            statement = select(Client, ClientGrant).join(
                ClientGrant, col(ClientGrant.client_id) == col(Client.id)
            )
            if project is not None:
                statement = statement.where(ClientGrant.project == project)
                if caller.role_on(project) != "owner":
                    statement = statement.where(Client.created_by == caller.subject)
            rows = (await session.exec(statement.order_by(col(Client.created_at)))).all()
        found: dict[str, tuple[Client, dict[str, str]]] = {}
        for client, grant in rows:
            found.setdefault(client.id, (client, {}))[1][grant.project] = grant.role
        return [self._key_public(client, grants) for client, grants in found.values()]

    async def revoke_key(
        self, key_id: str, project: str | None, caller: Principal, address: str
    ) -> None:
        async with self.db.session() as session:
            client = await session.get(Client, key_id)
            grant = await session.get(ClientGrant, (key_id, project)) if project else None
            if client is None or (project is not None and grant is None):
                raise NotFound(
                    f"no key {key_id!r}" + (f" in project {project!r}" if project else "")
                )
            may = caller.is_admin or client.created_by == caller.subject
            if project is not None and caller.role_on(project) == "owner":
                granted = await session.exec(
                    select(ClientGrant.project).where(ClientGrant.client_id == key_id)
                )
                if set(granted.all()) - {project}:  # not the owner's to end for the others
                    raise Forbidden(
                        "this key serves other projects too: its maker or an admin revokes it"
                    )
                may = True
            if not may:
                raise Forbidden("a key is revoked by its maker, the project's owners, or an admin")
            if client.revoked_at is None:
                client.revoked_at = _now()
                session.add(client)
                await self._revoke_access(session, client.id)
            self._audit(
                session,
                "auth.key-revoke",
                actor=caller.name,
                address=address,
                project=project or "",
                target=key_id,
            )


def _pair_key(name: str, address: str) -> str:
    """The sign-in failures of one account from one address (where a lockout lands)."""
    return f"user:{name}|{address}"  # '|' is in no username and no address


def _lesser(granted: str, held: str | None) -> str | None:
    """The weaker of a key's role and what its maker holds now (None: nothing)."""
    if held is None:
        return None
    return granted if ROLE_RANK[granted] <= ROLE_RANK[held] else held


async def _user(session: AsyncSession, username: str) -> User | None:
    """The account of ``username`` in any case (admin, Admin and ADMIN are one)."""
    statement = select(User).where(func.lower(User.username) == username.lower())
    return (await session.exec(statement)).first()


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

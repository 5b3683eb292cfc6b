from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from giftcloud_core.bus import Bus
from giftcloud_core.db import Database
from giftcloud_core.errors import Conflict, NotFound, Unauthorized
from giftcloud_core.events import ProjectCreated, parse_event
from giftcloud_core.settings import Settings
from giftcloud_core.tokens import Principal, TokenSigner, generate_private_key_pem
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from giftcloud_auth.models import Membership, OutboxEvent, Project, SigningKey, User
from giftcloud_auth.schemas import MemberAdd, ProjectCreate, ProjectPublic, UserCreate, UserPublic

log = logging.getLogger(__name__)


class AuthService:
    def __init__(self, settings: Settings, db: Database, bus: Bus) -> None:
        self.settings = settings
        self.db = db
        self.bus = bus
        self.hasher = PasswordHasher()
        self._signer: TokenSigner | None = None
        # a constant-time answer for unknown users: verify against a real hash
        self._dummy_hash = self.hasher.hash(secrets.token_hex(16))
        self._relay_lock = asyncio.Lock()
        self._relay_task: asyncio.Task[None] | None = None

    @property
    def signer(self) -> TokenSigner:
        if self._signer is None:
            raise RuntimeError("AuthService.start() was not called")
        return self._signer

    async def start(self) -> None:
        await self._load_signing_key()
        await self._ensure_admin()
        await self._announce_projects()
        self._relay_task = asyncio.create_task(self._relay_forever())

    async def stop(self) -> None:
        if self._relay_task is not None:
            self._relay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._relay_task

    async def _relay_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.auth.outbox_interval_seconds)
            await self.relay_outbox()

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
                            .limit(100)
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

    async def _load_signing_key(self) -> None:
        configured = self.settings.auth.signing_key
        if configured is not None:
            pem = configured.get_secret_value()
        else:
            async with self.db.session() as session:
                stored = (
                    await session.exec(select(SigningKey).order_by(col(SigningKey.created_at)))
                ).first()
                if stored is None:
                    pem = generate_private_key_pem()
                    signer = TokenSigner(
                        pem, self.settings.auth.issuer, self.settings.auth.audience
                    )
                    session.add(SigningKey(kid=signer.kid, private_pem=pem))
                else:
                    pem = stored.private_pem
        self._signer = TokenSigner(pem, self.settings.auth.issuer, self.settings.auth.audience)

    async def _ensure_admin(self) -> None:
        async with self.db.session() as session:
            if (await session.exec(select(User).limit(1))).first() is not None:
                return
            given = self.settings.admin_password
            password = given.get_secret_value() if given else secrets.token_urlsafe(18)
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
        for project in projects:
            await self.bus.publish(
                ProjectCreated(project=project.name, title=project.title, correlation_id="startup")
            )

    async def issue_token(self, username: str, password: str) -> tuple[str, int]:
        async with self.db.session() as session:
            user = await _user(session, username)
            memberships = (
                await session.exec(
                    select(Membership).where(
                        Membership.username == (user.username if user else username)
                    )
                )
            ).all()
        try:
            self.hasher.verify(user.password_hash if user else self._dummy_hash, password)
        except VerificationError:
            user = None
        if user is None:
            raise Unauthorized("wrong username or password")
        lifetime = self.settings.auth.access_token_minutes * 60
        token = self.signer.sign(
            user.username,
            site_roles=user.roles(),
            projects={m.project: m.role for m in memberships},
            lifetime_seconds=lifetime,
        )
        return token, lifetime

    async def create_user(self, data: UserCreate) -> UserPublic:
        user = User(
            username=data.username,
            password_hash=self.hasher.hash(data.password),
            site_roles=",".join(sorted(set(data.site_roles))),
        )
        try:
            async with self.db.session() as session:
                session.add(user)
        except IntegrityError as exc:  # the same name in any case
            raise Conflict(f"user {data.username!r} exists already") from exc
        return UserPublic(username=user.username, site_roles=user.roles())

    async def create_project(self, data: ProjectCreate, caller: Principal) -> ProjectPublic:
        announce = ProjectCreated(project=data.name, title=data.title, correlation_id=data.name)
        try:
            async with self.db.session() as session:
                session.add(Project(name=data.name, title=data.title, created_by=caller.subject))
                await session.flush()
                session.add(Membership(project=data.name, username=caller.subject, role="owner"))
                outbox = OutboxEvent(body=announce.model_dump_json())
                session.add(outbox)  # committed with the project or not at all
        except IntegrityError as exc:
            raise Conflict(f"project {data.name!r} exists already") from exc
        await self.relay_outbox()  # now if the broker is there, else on a later round
        return ProjectPublic(name=data.name, title=data.title, role="owner")

    async def projects_of(self, caller: Principal) -> list[ProjectPublic]:
        async with self.db.session() as session:
            projects = (await session.exec(select(Project).order_by(Project.name))).all()
            roles = {
                m.project: m.role
                for m in (
                    await session.exec(
                        select(Membership).where(Membership.username == caller.subject)
                    )
                ).all()
            }
        return [
            ProjectPublic(
                name=p.name,
                title=p.title,
                role=roles.get(p.name) or ("owner" if caller.is_admin else None),
            )
            for p in projects
            if caller.is_admin or p.name in roles
        ]

    async def add_member(self, project: str, data: MemberAdd) -> None:
        """Set a user's role on a project; an unknown user changes nothing, and says nothing."""
        async with self.db.session() as session:
            if await session.get(Project, project) is None:
                raise NotFound(f"no project {project!r}")
            user = await _user(session, data.username)
            if user is None:
                log.info("membership of an unknown account on %s: nothing to change", project)
                return
            existing = await session.get(Membership, (project, user.username))
            if existing is None:
                session.add(Membership(project=project, username=user.username, role=data.role))
            else:
                existing.role = data.role
                session.add(existing)

    async def project_exists(self, project: str) -> bool:
        async with self.db.session() as session:
            return await session.get(Project, project) is not None


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

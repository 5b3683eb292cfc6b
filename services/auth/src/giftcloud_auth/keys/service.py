"""API keys and OAuth2 clients: made (the secret shown once, kept as its hash), listed,
revoked, and exchanged for access tokens."""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime, timedelta

from giftcloud_core.clock import now
from giftcloud_core.db import Database
from giftcloud_core.errors import Forbidden, NotFound, Unauthorized
from giftcloud_core.settings import AuthSettings
from giftcloud_core.tokens import ROLE_RANK, Principal
from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from giftcloud_auth.common import digest, networks, split, user_named
from giftcloud_auth.journal import Journal
from giftcloud_auth.models import Client, ClientGrant, Project, User
from giftcloud_auth.projects.service import roles_of
from giftcloud_auth.schemas import ClientCreate, KeyCreate, KeyCreated, KeyPublic, TokenResponse
from giftcloud_auth.signing.revocation import Revocations
from giftcloud_auth.signing.service import SigningKeys


def _lesser(granted: str, held: str | None) -> str | None:
    """The weaker of a key's role and what its maker holds now (None: nothing)."""
    if held is None:
        return None
    return granted if ROLE_RANK[granted] <= ROLE_RANK[held] else held


def _public(client: Client, grants: dict[str, str]) -> KeyPublic:
    return KeyPublic(
        id=client.id,
        name=client.name,
        grants=grants,
        created_by=client.created_by,
        created_at=client.created_at,
        expires_at=client.expires_at,
        last_used_at=client.last_used_at,
        revoked_at=client.revoked_at,
        networks=split(client.networks),
    )


class Keys:
    def __init__(
        self,
        config: AuthSettings,
        db: Database,
        journal: Journal,
        signing: SigningKeys,
        revocations: Revocations,
    ) -> None:
        self.config = config
        self.db = db
        self.journal = journal
        self.signing = signing
        self.revocations = revocations

    # --- the client_credentials grant ---------------------------------------------------

    async def exchange(self, client_id: str, secret: str, address: str) -> TokenResponse:
        """OAuth2 client credentials (and API keys): an access token with the credential's
        grants, each no more than its creator holds now."""
        at = now()
        async with self.db.session() as session:
            client = await session.get(Client, client_id[:64])
            ok = client is not None and hmac.compare_digest(client.secret_hash, digest(secret))
            creator = await user_named(session, client.created_by) if client is not None else None
            refusal = None
            if client is None or not ok:
                refusal = "unknown client or wrong secret"
            elif client.revoked_at is not None:
                refusal = "this key was revoked"
            elif client.expires_at is not None and client.expires_at <= at:
                refusal = "this key has expired"
            elif creator is None or creator.disabled:
                refusal = "the account that made this key is disabled or deleted"
            if refusal is not None or client is None or creator is None:
                self.journal.audit(
                    session,
                    "auth.key-use",
                    actor=client_id[:64],
                    address=address,
                    outcome="denied",
                    target=client_id[:64],
                    detail=refusal or "",
                )
            else:
                return await self._token(session, client, creator, at, address)
        raise Unauthorized(refusal or "refused")  # after the commit: the refusal is recorded

    async def _token(
        self, session: AsyncSession, client: Client, creator: User, at: datetime, address: str
    ) -> TokenResponse:
        held = await roles_of(session, creator.username)
        admin = "admin" in creator.roles()
        grants = (
            await session.exec(select(ClientGrant).where(ClientGrant.client_id == client.id))
        ).all()
        projects = {
            g.project: role
            for g in grants
            if (role := _lesser(g.role, "owner" if admin else held.get(g.project))) is not None
        }
        client.last_used_at = at
        session.add(client)
        lifetime = self.config.access_token_minutes * 60
        token = self.signing.signer.sign(
            client.id,
            site_roles=[],
            projects=projects,
            lifetime_seconds=lifetime,
            kind="client",
            networks=split(client.networks),
            creator=creator.username,
        )
        self.journal.audit(
            session,
            "auth.key-use",
            actor=f"key {client.id} of {creator.username}",
            address=address,
            project=next(iter(projects)) if len(projects) == 1 else "",
            target=client.id,
        )
        return TokenResponse(access_token=token, expires_in=lifetime)

    # --- making, listing, revoking -------------------------------------------------------

    async def _new(
        self,
        session: AsyncSession,
        name: str,
        grants: dict[str, str],
        caller: Principal,
        days: int,
        allowed: list[str],
    ) -> KeyCreated:
        client_id = "gck_" + secrets.token_hex(5)
        secret = secrets.token_urlsafe(32)
        client = Client(
            id=client_id,
            name=name,
            secret_hash=digest(secret),
            created_by=caller.subject,
            networks=",".join(networks(allowed)),
            expires_at=now() + timedelta(days=days),
        )
        session.add(client)
        await session.flush()
        for project, role in grants.items():
            session.add(ClientGrant(client_id=client_id, project=project, role=role))
        return KeyCreated(
            **_public(client, grants).model_dump(),
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
            created = await self._new(
                session, data.name, {project: data.role}, caller, data.expires_days, data.networks
            )
            self.journal.audit(
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
            created = await self._new(
                session, data.name, grants, caller, data.expires_days, data.networks
            )
            self.journal.audit(
                session,
                "auth.key-create",
                actor=caller.name,
                address=address,
                target=created.id,
                detail="client for " + ", ".join(f"{p} ({r})" for p, r in grants.items()),
            )
        return created

    async def listed(self, project: str | None, caller: Principal) -> list[KeyPublic]:
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
        return [_public(client, grants) for client, grants in found.values()]

    async def revoke(
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
                client.revoked_at = now()
                session.add(client)
                await self.revocations.revoke(session, client.id)
            self.journal.audit(
                session,
                "auth.key-revoke",
                actor=caller.name,
                address=address,
                project=project or "",
                target=key_id,
            )

    async def revoke_made_by(self, session: AsyncSession, username: str) -> None:
        """Every key an account made stops (the account is deleted)."""
        await session.exec(
            update(Client)
            .where(col(Client.created_by) == username, col(Client.revoked_at).is_(None))
            .values(revoked_at=now())
        )

"""Projects and membership. Every change is announced (ProjectUpdated, through the outbox):
the other services keep their own copy of a project's name, title and networks."""

from __future__ import annotations

from giftcloud_core.bus import Bus
from giftcloud_core.db import Database
from giftcloud_core.errors import Conflict, NotFound
from giftcloud_core.events import ProjectCreated, ProjectUpdated
from giftcloud_core.tokens import Principal
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from giftcloud_auth.common import networks, split, user_named
from giftcloud_auth.journal import Journal
from giftcloud_auth.models import Membership, Project, SiteSetting
from giftcloud_auth.schemas import MemberAdd, MemberPublic, ProjectCreate, ProjectPublic
from giftcloud_auth.signing.revocation import Revocations

SITE_NETWORKS = "site_networks"


async def roles_of(session: AsyncSession, username: str) -> dict[str, str]:
    """A user's role on each of their projects, as it is now."""
    rows = await session.exec(select(Membership).where(Membership.username == username))
    return {m.project: m.role for m in rows.all()}


def _state(project: Project, default: list[str], cid: str) -> ProjectUpdated:
    own = split(project.networks) if project.networks is not None else default
    return ProjectUpdated(
        project=project.name, title=project.title, networks=tuple(own), correlation_id=cid
    )


async def _site_networks(session: AsyncSession) -> list[str]:
    row = await session.get(SiteSetting, SITE_NETWORKS)
    return split(row.value if row else "")


async def _last_owner(session: AsyncSession, project: str, username: str) -> bool:
    owners = (
        await session.exec(
            select(Membership.username).where(
                Membership.project == project, Membership.role == "owner"
            )
        )
    ).all()
    return list(owners) == [username]


class Projects:
    def __init__(self, db: Database, bus: Bus, journal: Journal, revocations: Revocations) -> None:
        self.db = db
        self.bus = bus
        self.journal = journal
        self.revocations = revocations

    async def announce(self) -> None:
        """Re-publish every project at start: consumers are idempotent, and one whose
        database was rebuilt learns the projects again."""
        async with self.db.session() as session:
            projects = (await session.exec(select(Project))).all()
            default = await _site_networks(session)
        for project in projects:
            await self.bus.publish(_state(project, default, "startup"))

    async def create(self, data: ProjectCreate, caller: Principal, address: str) -> ProjectPublic:
        try:
            async with self.db.session() as session:
                project = Project(name=data.name, title=data.title, created_by=caller.subject)
                session.add(project)
                await session.flush()
                session.add(Membership(project=data.name, username=caller.subject, role="owner"))
                self.journal.emit(
                    session,
                    ProjectCreated(project=data.name, title=data.title, correlation_id=data.name),
                )
                self.journal.emit(
                    session, _state(project, await _site_networks(session), data.name)
                )
                self.journal.audit(
                    session,
                    "auth.project-create",
                    actor=caller.name,
                    address=address,
                    project=data.name,
                )
        except IntegrityError as exc:
            raise Conflict(f"project {data.name!r} exists already") from exc
        await self.journal.relay()  # now if the broker is there, else on a later round
        return ProjectPublic(name=data.name, title=data.title, role="owner")

    async def get(self, name: str) -> Project:
        async with self.db.session() as session:
            project = await session.get(Project, name)
        if project is None:
            raise NotFound(f"no project {name!r}")
        return project

    async def exists(self, project: str) -> bool:
        async with self.db.session() as session:
            return await session.get(Project, project) is not None

    async def update(self, name: str, title: str, caller: Principal, address: str) -> ProjectPublic:
        async with self.db.session() as session:
            project = await session.get(Project, name)
            if project is None:
                raise NotFound(f"no project {name!r}")
            project.title = title
            session.add(project)
            self.journal.emit(session, _state(project, await _site_networks(session), name))
            self.journal.audit(
                session, "auth.project-update", actor=caller.name, address=address, project=name
            )
        return ProjectPublic(name=name, title=title, role=caller.role_on(name))

    async def of(self, caller: Principal) -> list[ProjectPublic]:
        """The projects the caller may see, with the caller's role on each."""
        async with self.db.session() as session:
            projects = (await session.exec(select(Project).order_by(col(Project.name)))).all()
            roles = (
                await roles_of(session, caller.subject)
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

    async def set_member(
        self, project: str, data: MemberAdd, caller: Principal, address: str
    ) -> None:
        """Set a user's role on a project; an unknown user changes nothing, and says nothing."""
        async with self.db.session() as session:
            if await session.get(Project, project) is None:
                raise NotFound(f"no project {project!r}")
            user = await user_named(session, data.username)
            if user is None:
                self.journal.audit(
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
                    and await _last_owner(session, project, user.username)
                ):
                    raise Conflict(
                        "the last owner of a project cannot step down: make another owner first"
                    )
                existing.role = data.role
                session.add(existing)
                await self.revocations.revoke(session, user.username)  # the old role is in tokens
            self.journal.audit(
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
            user = await user_named(session, username)
            membership = await session.get(Membership, (project, user.username)) if user else None
            if membership is None:
                return  # the same answer whether the account exists or not
            if membership.role == "owner" and await _last_owner(
                session, project, membership.username
            ):
                raise Conflict(
                    "the last owner of a project cannot be removed: make another owner first"
                )
            await session.delete(membership)
            await self.revocations.revoke(session, membership.username)  # at once
            self.journal.audit(
                session,
                "auth.member-remove",
                actor=caller.name,
                address=address,
                project=project,
                target=membership.username,
            )

    async def networks(self, project: str) -> tuple[list[str] | None, list[str]]:
        """The project's own networks (None: the site's default) and the site's default."""
        async with self.db.session() as session:
            row = await session.get(Project, project)
            if row is None:
                raise NotFound(f"no project {project!r}")
            own = split(row.networks) if row.networks is not None else None
            return own, await _site_networks(session)

    async def set_networks(
        self, project: str, given: list[str] | None, caller: Principal, address: str
    ) -> None:
        clean = list(networks(given)) if given is not None else None
        async with self.db.session() as session:
            row = await session.get(Project, project)
            if row is None:
                raise NotFound(f"no project {project!r}")
            row.networks = ",".join(clean) if clean is not None else None
            session.add(row)
            self.journal.emit(session, _state(row, await _site_networks(session), project))
            self.journal.audit(
                session,
                "auth.networks-set",
                actor=caller.name,
                address=address,
                project=project,
                detail="site default" if clean is None else (", ".join(clean) or "anywhere"),
            )

    async def site_networks(self) -> list[str]:
        async with self.db.session() as session:
            return await _site_networks(session)

    async def set_site_networks(self, given: list[str], caller: Principal, address: str) -> None:
        clean = networks(given)
        async with self.db.session() as session:
            await session.merge(SiteSetting(key=SITE_NETWORKS, value=",".join(clean)))
            following = (
                await session.exec(select(Project).where(col(Project.networks).is_(None)))
            ).all()
            for project in following:  # the projects that follow the default change with it
                self.journal.emit(session, _state(project, list(clean), "site-networks"))
            self.journal.audit(
                session,
                "auth.networks-set",
                actor=caller.name,
                address=address,
                detail="site default: " + (", ".join(clean) or "anywhere"),
            )

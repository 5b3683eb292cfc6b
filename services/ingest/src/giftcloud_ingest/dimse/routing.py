"""The node's routes: which called AE title stores into which project, from which calling
AE titles and networks; an association is admitted by its route or rejected saying why
(PS3.8 §9.3.4)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy
from giftcloud_core.db import Database
from giftcloud_core.errors import BadRequest, Conflict, NotFound
from giftcloud_core.network import address_in, normalise_networks
from giftcloud_dicom.instance import ae_title_problem
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from giftcloud_ingest.models import DicomRoute, KnownProject
from giftcloud_ingest.receiving.service import split_list

#: A-ASSOCIATE-RJ (PS3.8 §9.3.4): rejected-permanent by the service user, and why
CALLING_NOT_RECOGNISED, CALLED_NOT_RECOGNISED, NO_REASON = 0x03, 0x07, 0x01


def _lines(text: str) -> list[str]:
    return [line for line in text.split("\n") if line]


class _RouteRow(Protocol):
    """A route as stored (a :class:`DicomRoute`, or a row with its columns)."""

    @property
    def project(self) -> str: ...
    @property
    def ae_title(self) -> str: ...
    @property
    def calling_ae_titles(self) -> str: ...
    @property
    def networks(self) -> str: ...


@dataclass(frozen=True)
class Route:
    project: str
    ae_title: str
    calling_ae_titles: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()

    @classmethod
    def of(cls, row: _RouteRow) -> Route:
        return cls(
            row.project,
            row.ae_title,
            tuple(_lines(row.calling_ae_titles)),
            tuple(split_list(row.networks)),
        )

    def public(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "ae_title": self.ae_title,
            "calling_ae_titles": list(self.calling_ae_titles),
            "networks": list(self.networks),
        }


@dataclass(frozen=True)
class Refusal:
    diagnostic: int
    reason: str


#: a route and its project's networks (``known`` NULL: the project is gone)
_ADMISSION: sqlalchemy.Select[str, str, str, str, str | None, str | None] = sqlalchemy.select(
    col(DicomRoute.project),
    col(DicomRoute.ae_title),
    col(DicomRoute.calling_ae_titles),
    col(DicomRoute.networks),
    col(KnownProject.name).label("known"),
    col(KnownProject.networks).label("project_networks"),
).outerjoin(KnownProject, col(KnownProject.name) == col(DicomRoute.project))


class DicomRoutes:
    """The node's routes: which called AE title stores into which project, from whom."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, project: str) -> Route:
        async with self.db.session() as session:
            row = await session.get(DicomRoute, project)
        if row is None:
            raise NotFound(f"project {project!r} has no DICOM AE title")
        return Route.of(row)

    async def put(
        self,
        project: str,
        ae_title: str,
        calling_ae_titles: list[str],
        networks: list[str],
        by: str,
    ) -> Route:
        """Set the project's route; 400 naming what is wrong, 409 if the AE title is taken."""
        title = ae_title.strip(" ")
        for value in [ae_title, *calling_ae_titles]:
            if (problem := ae_title_problem(value)) is not None:
                raise BadRequest(f'AE title "{value[:20]}": {problem}')
        callers = list(dict.fromkeys(t.strip(" ") for t in calling_ae_titles))
        try:
            cidrs = list(normalise_networks(networks))
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        row = DicomRoute(
            project=project,
            ae_title=title,
            calling_ae_titles="\n".join(callers),
            networks=",".join(cidrs),
            updated_by=by,
            updated_at=datetime.now(UTC),
        )
        try:
            async with self.db.session() as session:
                await session.merge(row)
        except IntegrityError:
            raise AeTitleTaken(f"the AE title {title!r} routes to another project") from None
        return Route(project, title, tuple(callers), tuple(cidrs))

    async def delete(self, project: str) -> None:
        async with self.db.session() as session:
            row = await session.get(DicomRoute, project)
            if row is None:
                raise NotFound(f"project {project!r} has no DICOM AE title")
            await session.delete(row)

    async def admit(self, called: str, calling: str, address: str) -> Route | Refusal:
        """The route an association from ``calling`` at ``address`` to ``called`` takes, or
        why it is refused."""
        # asked for every instance (a route changed since stops the association): one
        # statement, no ORM objects, no transaction to commit
        async with self.db.engine.connect() as connection:
            reading = await connection.execution_options(isolation_level="AUTOCOMMIT")
            row = (
                await reading.execute(_ADMISSION.where(col(DicomRoute.ae_title) == called))
            ).first()
        if row is None:
            return Refusal(CALLED_NOT_RECOGNISED, f"called AE title {called!r} not recognised")
        if row.known is None:
            return Refusal(
                CALLED_NOT_RECOGNISED,
                f"called AE title {called!r} routes to project {row.project!r}, which is gone",
            )
        route = Route.of(row)
        project_networks = split_list(row.project_networks)
        # the network first: an outsider learns nothing of which calling titles are valid
        for allowed, whose in ((route.networks, "the AE title"), (project_networks, "the project")):
            if allowed and not address_in(address, allowed):
                return Refusal(
                    NO_REASON, f"{address} is not among the networks {whose} {called!r} allows"
                )
        if route.calling_ae_titles and calling not in route.calling_ae_titles:
            return Refusal(
                CALLING_NOT_RECOGNISED,
                f"calling AE title {calling!r} may not send to {called!r}",
            )
        return route


class AeTitleTaken(Conflict):
    pass

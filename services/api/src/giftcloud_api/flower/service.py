"""The approvals, kept in the site's database: one place for the rule that only reviewed
code runs (the jobs' algorithms are approved the same way, by digest); and learning's
privacy budget, spent a round at a time."""

from giftcloud_core.db import Database
from giftcloud_core.errors import Conflict, Forbidden, NotFound
from giftcloud_core.tokens import Principal
from sqlalchemy import func, text
from sqlmodel import col, select

from giftcloud_api.flower.models import FlowerApp, FlowerGate, FlowerSpend, _now
from giftcloud_api.flower.schemas import FlowerAppOut, MachineOut, SpendIn, SpendOut

#: what a caller that is not the site's gate is told
NOT_THE_GATE = (
    "only the site's Flower gate reports decisions and spends budget: its admin registers"
    " the gate's API key (giftcloud federate flower --gate KEY_ID)"
)


class FlowerApps:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def approved(self) -> list[FlowerAppOut]:
        async with self.db.session() as session:
            rows = (await session.exec(select(FlowerApp).order_by(col(FlowerApp.name)))).all()
        return [FlowerAppOut.model_validate(row, from_attributes=True) for row in rows]

    async def approve(self, digest: str, name: str, by: str) -> FlowerAppOut:
        async with self.db.session() as session:
            row = await session.get(FlowerApp, digest) or FlowerApp(
                digest=digest, name=name, approved_by=by
            )
            row.name, row.approved_by, row.approved_at = name, by, _now()
            session.add(row)
        return FlowerAppOut(digest=digest, name=name, approved_by=by, approved_at=row.approved_at)

    async def revoke(self, digest: str) -> None:
        async with self.db.session() as session:
            row = await session.get(FlowerApp, digest)
            if row is None:
                raise NotFound(f"no Flower app with digest {digest} is approved at this site")
            await session.delete(row)

    async def spend(self, project: str, spend: SpendIn) -> SpendOut:
        """Record the round's epsilon against who asked on ``project``, unless it would
        pass the budget (:class:`Conflict` saying so, nothing recorded). One spend at a
        time per project, across replicas."""
        async with self.db.session() as session:
            connection = await session.connection()
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))"),
                {"name": f"giftcloud.flower.budget:{project}"},
            )
            query = select(func.coalesce(func.sum(FlowerSpend.epsilon), 0.0)).where(
                FlowerSpend.project == project, FlowerSpend.asked_by == spend.asked_by
            )
            spent = float((await session.exec(query)).one())
            if spent + spend.epsilon > spend.budget + 1e-9:
                raise Conflict(
                    f"the learning budget of {spend.asked_by} on {project} at this site would be"
                    f" passed: {spent:g} of {spend.budget:g} spent, {spend.epsilon:g} a round"
                )
            session.add(
                FlowerSpend(
                    project=project,
                    asked_by=spend.asked_by,
                    epsilon=spend.epsilon,
                    hub_run=spend.hub_run,
                    run="" if spend.run is None else str(spend.run),
                )
            )
        return SpendOut(asked_by=spend.asked_by, spent=spent + spend.epsilon, budget=spend.budget)

    async def register_gate(self, client_id: str, by: str) -> MachineOut:
        """The API key the site's gate uses (one gate per site: a new one replaces it)."""
        async with self.db.session() as session:
            row = await session.get(FlowerGate, 1) or FlowerGate(
                client_id=client_id, registered_by=by
            )
            row.client_id, row.registered_by, row.registered_at = client_id, by, _now()
            session.add(row)
        return MachineOut(client_id=client_id, registered_by=by, registered_at=row.registered_at)

    async def gate(self) -> MachineOut | None:
        async with self.db.session() as session:
            row = await session.get(FlowerGate, 1)
        return None if row is None else MachineOut.model_validate(row, from_attributes=True)

    async def check_gate(self, caller: Principal) -> None:
        """:class:`Forbidden` unless ``caller`` is the registered gate's key."""
        gate = await self.gate()
        if not caller.is_credential(None if gate is None else gate.client_id):
            raise Forbidden(NOT_THE_GATE)

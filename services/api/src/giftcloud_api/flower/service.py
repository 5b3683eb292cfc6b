"""The approvals, kept in the site's database: one place for the rule that only reviewed
code runs (the jobs' algorithms are approved the same way, by digest)."""

from giftcloud_core.db import Database
from giftcloud_core.errors import NotFound
from sqlmodel import col, select

from giftcloud_api.flower.models import FlowerApp, _now
from giftcloud_api.flower.schemas import FlowerAppOut


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

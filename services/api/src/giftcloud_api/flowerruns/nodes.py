"""SuperNode keys at a hub: its admin asks for a site's SuperNode to be let in (its public
key) or out; the hub's runner, the one client of the SuperLink's Control API, does it when
it next calls and reports what the SuperLink said. The admin never needs the Control API."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_ssh_public_key
from giftcloud_core.clock import now
from giftcloud_core.db import Database
from giftcloud_core.errors import BadRequest, Conflict, NotFound
from sqlmodel import col, select

from giftcloud_api.flowerruns.models import FlowerNode
from giftcloud_api.flowerruns.schemas import NodeOut, NodeReport, NodeTask

#: what a node in each state asks of the runner
ACTIONS = {"registering": "register", "unregistering": "unregister"}


def checked_key(text: str) -> str:
    """The key as one OpenSSH line when it is an EC P-384 public key (what a SuperNode's
    ``--auth-supernode-private-key`` pairs with); :class:`BadRequest` otherwise."""
    line = text.strip()
    try:
        key = load_ssh_public_key(line.encode())
    except (ValueError, TypeError) as error:
        raise BadRequest(f"not an OpenSSH public key: {error}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp384r1":
        raise BadRequest("a SuperNode's key is EC P-384 (ecdsa-sha2-nistp384)")
    return line


class FlowerNodes:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def ask(self, name: str, public_key: str, by: str) -> NodeOut:
        """Let the SuperNode with ``public_key`` in, as ``name`` (a new key for a name that
        is in: the old one out first)."""
        line = checked_key(public_key)
        async with self.db.session() as session:
            row = await session.get(FlowerNode, name, with_for_update=True)
            taken = (
                await session.exec(
                    select(FlowerNode).where(
                        FlowerNode.public_key == line,
                        FlowerNode.name != name,
                        col(FlowerNode.state).in_(("registering", "registered")),
                    )
                )
            ).first()
            if taken is not None:
                raise Conflict(f"that key is {taken.name}'s")
            if row is not None and row.state in ("registered", "unregistering"):
                raise Conflict(f"{name} is in (node {row.node_id}): take it out first")
            row = row or FlowerNode(name=name, public_key=line, asked_by=by)
            row.public_key, row.asked_by, row.asked_at = line, by, now()
            row.state, row.reason, row.node_id, row.done_at = "registering", "", None, None
            session.add(row)
            return NodeOut.model_validate(row, from_attributes=True)

    async def remove(self, name: str, by: str) -> NodeOut:
        async with self.db.session() as session:
            row = await session.get(FlowerNode, name, with_for_update=True)
            if row is None or row.state in ("unregistered", "failed"):
                raise NotFound(f"no SuperNode {name} is in at this hub")
            if row.state == "registering":  # not yet done: nothing to undo
                row.state, row.reason, row.done_at = (
                    "unregistered",
                    "withdrawn before it was in",
                    now(),
                )
            else:
                row.state, row.reason = "unregistering", ""
            row.asked_by, row.asked_at = by, now()
            session.add(row)
            return NodeOut.model_validate(row, from_attributes=True)

    async def nodes(self) -> list[NodeOut]:
        async with self.db.session() as session:
            rows = (await session.exec(select(FlowerNode).order_by(col(FlowerNode.name)))).all()
        return [NodeOut.model_validate(row, from_attributes=True) for row in rows]

    async def tasks(self) -> list[NodeTask]:
        """What the runner is to do at the SuperLink."""
        async with self.db.session() as session:
            rows = (
                await session.exec(
                    select(FlowerNode).where(col(FlowerNode.state).in_(list(ACTIONS)))
                )
            ).all()
        return [
            NodeTask(
                name=row.name,
                action=ACTIONS[row.state],
                public_key=row.public_key,
                node_id=row.node_id,
            )
            for row in rows
        ]

    async def report(self, name: str, report: NodeReport) -> FlowerNode:
        """What the SuperLink said; a report for a node no longer asked about is ignored."""
        async with self.db.session() as session:
            row = await session.get(FlowerNode, name, with_for_update=True)
            if row is None:
                raise NotFound(f"no SuperNode {name} was asked for")
            at = now()
            if row.state == "registering" and report.state in ("registered", "failed"):
                row.state, row.reason, row.done_at = report.state, report.reason, at
                row.node_id = report.node_id
            elif row.state == "unregistering" and report.state == "unregistered":
                row.state, row.reason, row.done_at = "unregistered", "", at
            elif row.state == "unregistering" and report.state == "failed":
                # still in at the SuperLink: said so, and asked for again
                row.state, row.reason = "registered", f"not taken out: {report.reason}"
            session.add(row)
            await session.flush()
            await session.refresh(row)
            return row

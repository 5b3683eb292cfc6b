"""Flower runs at a hub: asked for by people who may read a project, taken one at a time by
the hub's runner (the one machine credential its admin registered), followed until they
end. A run the runner stops reporting on is failed once its lease runs out."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from giftcloud_core.clock import now
from giftcloud_core.db import Database
from giftcloud_core.errors import BadRequest, Conflict, Forbidden, NotFound
from giftcloud_core.settings import FederationSettings
from giftcloud_core.tokens import Principal
from sqlmodel import col, select

from giftcloud_api.flowerruns.models import RUNNER, FlowerRun, FlowerRunner
from giftcloud_api.flowerruns.schemas import (
    FINAL,
    RESERVED,
    CatalogueApp,
    FlowerRunIn,
    FlowerRunOut,
    RunReport,
    RunTask,
    Value,
)


def checked(run: FlowerRunIn, apps: list[CatalogueApp]) -> dict[str, Value]:
    """The run's configuration when the catalogue's app takes every key of it, each of its
    default's type (an int where a float is, too); :class:`BadRequest` saying why not."""
    offered = {app.name: app for app in apps}
    app = offered.get(run.app)
    if app is None:
        raise BadRequest(
            f"no Flower app {run.app!r} at this hub; its runner offers: "
            f"{', '.join(sorted(offered)) or 'nothing yet (is the runner running?)'}"
        )
    for key, value in run.config.items():
        if key.startswith(RESERVED):
            raise BadRequest(f"{key!r}: keys starting {RESERVED!r} are set by giftcloud")
        if key not in app.config:
            raise BadRequest(
                f"{run.app} takes no {key!r}; it takes: {', '.join(sorted(app.config))}"
            )
        default = app.config[key]
        wanted = type(default)
        fits = isinstance(value, wanted) and isinstance(value, bool) == isinstance(default, bool)
        if wanted is float and isinstance(value, int) and not isinstance(value, bool):
            fits = True
        if not fits:
            raise BadRequest(
                f"{run.app}'s {key!r} is {_kind(default)} (default {default!r}), not {value!r}"
            )
    return dict(run.config)


def _kind(value: Value) -> str:
    return {bool: "true or false", int: "a whole number", float: "a number"}.get(
        type(value), "text"
    )


class FlowerRuns:
    def __init__(self, db: Database, settings: FederationSettings) -> None:
        self.db = db
        self.lease = timedelta(seconds=settings.flower_lease_seconds)

    async def register(self, client_id: str, by: str) -> FlowerRunner:
        """The runner's credential (one runner per hub: a new one replaces the last)."""
        async with self.db.session() as session:
            row = await session.get(FlowerRunner, RUNNER)
            if row is None:
                row = FlowerRunner(client_id=client_id, registered_by=by)
            row.client_id, row.registered_by, row.registered_at = client_id, by, now()
            session.add(row)
            await session.flush()
            await session.refresh(row)
            return row

    async def runner(self) -> FlowerRunner:
        async with self.db.session() as session:
            row = await session.get(FlowerRunner, RUNNER)
        if row is None:
            raise NotFound("no Flower runner is registered at this hub; its admin registers one")
        return row

    async def check_runner(self, caller: Principal) -> None:
        """:class:`Forbidden` unless ``caller`` is the registered runner's credential."""
        async with self.db.session() as session:
            row = await session.get(FlowerRunner, RUNNER)
        if not caller.is_credential(None if row is None else row.client_id):
            raise Forbidden("only the hub's registered Flower runner takes and reports runs")

    async def ask(self, project: str, run: FlowerRunIn, by: str) -> FlowerRunOut:
        runner = await self.runner()
        if runner.seen_at is None:
            raise Conflict(
                "the hub's Flower runner has not called in yet: is giftcloud-flower-runner"
                " running beside the SuperLink, with its key?"
            )
        if project not in runner.projects:
            raise Conflict(
                f"the hub's Flower runner does not serve {project}: its credential has no role"
                f" on it (it serves: {', '.join(runner.projects) or 'none yet'})"
            )
        config = checked(run, [CatalogueApp.model_validate(a) for a in runner.apps])
        row = FlowerRun(
            id=str(uuid.uuid4()), project=project, app=run.app, config=config, asked_by=by
        )
        async with self.db.session() as session:
            session.add(row)
        return _out(row)

    async def runs(self, project: str, limit: int = 50) -> list[FlowerRunOut]:
        async with self.db.session() as session:
            rows = await session.exec(
                select(FlowerRun)
                .where(FlowerRun.project == project)
                .order_by(col(FlowerRun.asked_at).desc())
                .limit(limit)
            )
            return [_out(row) for row in rows.all()]

    async def run(self, project: str, run_id: str) -> FlowerRunOut:
        async with self.db.session() as session:
            row = await session.get(FlowerRun, run_id)
        if row is None or row.project != project:
            raise NotFound(f"no Flower run {run_id} on {project}")
        return _out(row)

    async def cancel(self, project: str, run_id: str) -> FlowerRunOut:
        """A queued run ends now; a running one is stopped by the runner when it next reports."""
        async with self.db.session() as session:
            row = await session.get(FlowerRun, run_id, with_for_update=True)
            if row is None or row.project != project:
                raise NotFound(f"no Flower run {run_id} on {project}")
            if row.state in FINAL:
                raise Conflict(f"Flower run {run_id} has ended ({row.state})")
            if row.state == "queued":
                row.state, row.reason, row.ended_at = (
                    "cancelled",
                    "cancelled before it started",
                    now(),
                )
            row.cancel = True
            session.add(row)
            return _out(row)

    async def claim(self, apps: list[CatalogueApp], caller: Principal) -> RunTask | None:
        """The runner says what it offers and takes a run: first one it had started at the
        SuperLink before it stopped (its lease ran out: a runner that died and came back),
        to follow again; else the oldest queued run of a project its credential has a role
        on. A run whose lease ran out before it started at the SuperLink is failed."""
        at = now()
        projects = sorted(caller.projects)
        async with self.db.session() as session:
            runner = await session.get(FlowerRunner, RUNNER, with_for_update=True)
            if runner is None:
                raise NotFound("no Flower runner is registered at this hub")
            runner.apps, runner.seen_at = [a.model_dump() for a in apps], at
            runner.projects = projects
            session.add(runner)
            lapsed = (
                await session.exec(
                    select(FlowerRun)
                    .where(FlowerRun.state == "running", col(FlowerRun.lease_until) < at)
                    .order_by(col(FlowerRun.started_at))
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for row in lapsed:  # the runner stopped while it followed these
                served = row.project in projects
                if row.flower_run is not None and served:
                    # started at the SuperLink, where it went on: followed again, not re-run
                    row.lease_until = at + self.lease
                    session.add(row)
                    return RunTask.model_validate(row, from_attributes=True)
                row.state, row.ended_at = "failed", at
                row.reason = (
                    f"the hub's runner no longer serves {row.project}"
                    if not served
                    else "the hub's runner stopped before the run started at the SuperLink;"
                    " ask again"
                )
                session.add(row)
            queued = (
                await session.exec(
                    select(FlowerRun)
                    .where(FlowerRun.state == "queued", col(FlowerRun.project).in_(projects))
                    .order_by(col(FlowerRun.asked_at))
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
            ).first()
            if queued is None:
                return None
            queued.state, queued.started_at, queued.lease_until = "running", at, at + self.lease
            session.add(queued)
            return RunTask.model_validate(queued, from_attributes=True)

    async def report(self, run_id: str, report: RunReport) -> FlowerRun:
        """The runner's word on a run it took; once a run has ended, nothing changes it."""
        async with self.db.session() as session:
            row = await session.get(FlowerRun, run_id, with_for_update=True)
            if row is None or row.state == "queued":
                raise NotFound(f"the runner took no Flower run {run_id}")
            if row.state in FINAL:
                raise Conflict(f"Flower run {run_id} has ended ({row.state}: {row.reason})")
            at = now()
            row.state, row.reason = report.state, report.reason
            if report.flower_run is not None:
                row.flower_run = report.flower_run
            if report.state == "running":
                row.lease_until = at + self.lease
            else:
                row.ended_at, row.lease_until, row.result = at, None, report.result
            session.add(row)
            await session.flush()
            await session.refresh(row)
            return row


def _out(row: FlowerRun) -> FlowerRunOut:
    return FlowerRunOut.model_validate(row, from_attributes=True)


def detail(row: FlowerRun) -> dict[str, Any]:
    """What the hub's audit trail keeps of an ended run: the released result only."""
    return {
        "app": row.app,
        "flower_run": row.flower_run,
        "state": row.state,
        "reason": row.reason,
        "result": row.result,
    }

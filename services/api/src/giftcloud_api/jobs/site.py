"""The site's half of jobs: its admin approves algorithms by the digest of their code; a
job from the hub is checked here (a site never trusts its hub) and queued or refused with
the reason; its steward releases or withholds an output held for review; the hub is told
each state, again until it has taken it."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from giftcloud_core.access import Auditor
from giftcloud_core.clock import now
from giftcloud_core.db import Database
from giftcloud_core.errors import Conflict, NotFound
from giftcloud_core.hub import HubClient
from pydantic import ValidationError
from sqlalchemy import String, cast, func
from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from giftcloud_api.federation.models import Answer, Policy
from giftcloud_api.federation.schemas import Task
from giftcloud_api.jobs.algorithms import digest, installed
from giftcloud_api.jobs.models import Approval, SiteJob
from giftcloud_api.jobs.schemas import FINAL, REARMED, AlgorithmOut, DecisionIn, JobReport, JobSpec
from giftcloud_api.models import Project

log = logging.getLogger(__name__)


class SiteJobs:
    kinds = frozenset({"job", "cancel"})

    def __init__(self, db: Database, audit: Auditor, hub: HubClient) -> None:
        self.db = db
        self.audit = audit
        self.hub = hub
        #: set when a job is queued or cancelled: the runner looks at once
        self.wake = asyncio.Event()
        #: one sender at a time in this process (the poller, the runner, a decision)
        self._sending = asyncio.Lock()

    # -- the admin's approvals -------------------------------------------------------------

    async def algorithms(self) -> list[AlgorithmOut]:
        async with self.db.session() as session:
            approved = {a.name: a for a in (await session.exec(select(Approval))).all()}
        shown = []
        for name, algorithm in installed().items():
            approval = approved.get(name)
            shown.append(
                AlgorithmOut(
                    name=name,
                    entry_point=algorithm.entry_point,
                    summary=algorithm.summary(),
                    digest=digest(algorithm.source()),
                    approved=approval.digest if approval else "",
                    approved_by=approval.approved_by if approval else "",
                )
            )
        return shown

    async def approve(self, name: str, wanted: str, by: str) -> AlgorithmOut:
        """Approve the code of ``name`` installed now, named by the digest its reviewer saw."""
        algorithm = installed().get(name)
        if algorithm is None:
            raise NotFound(f"no algorithm {name!r} is installed at this site")
        actual = digest(algorithm.source())
        if actual != wanted:
            raise Conflict(
                f"the code of {name} installed here has digest {actual}, not {wanted}:"
                " review the code installed now"
            )
        async with self.db.session() as session:
            row = await session.get(Approval, name) or Approval(
                name=name, digest=actual, approved_by=by
            )
            row.digest, row.approved_by, row.approved_at = actual, by, now()
            session.add(row)
        return next(a for a in await self.algorithms() if a.name == name)

    async def revoke(self, name: str) -> None:
        async with self.db.session() as session:
            row = await session.get(Approval, name)
            if row is None:
                raise NotFound(f"{name!r} is not approved at this site")
            await session.delete(row)

    async def described(self) -> dict[str, Any]:
        """What the heartbeat tells the hub: the approved algorithms and their digests."""
        async with self.db.session() as session:
            rows = (await session.exec(select(Approval))).all()
        return {"algorithms": {row.name: row.digest for row in rows}}

    # -- jobs from the hub -----------------------------------------------------------------

    async def take(self, task: Task) -> None:
        assert task.job is not None
        try:
            spec = JobSpec.model_validate(task.job)
        except ValidationError as exc:
            reason = exc.errors()[0]["msg"] if exc.errors() else str(exc)
            attempt = int(task.job.get("attempt", 1))
            await self._tell(
                task.id,
                JobReport(
                    attempt=attempt,
                    state="refused",
                    reason=f"this site cannot read the job: {reason}",
                    as_of=now(),
                ),
            )
            return
        if task.kind == "cancel":
            await self.cancel(spec.id)
            return
        async with self.db.session() as session:
            row = await session.get(SiteJob, spec.id, with_for_update=True)
            if row is not None and row.attempt >= spec.attempt:
                row.reported = ""  # taken before: tell the hub again
                session.add(row)
                return
            row = (
                SiteJob(
                    id=spec.id,
                    project=spec.project,
                    algorithm=spec.algorithm,
                    digest=spec.digest,
                    criteria=[p.model_dump(mode="json") for p in spec.criteria],
                    question=spec.question,
                    parameters=spec.parameters,
                    submitted_by=spec.submitted_by,
                    attempt=spec.attempt,
                    standing=spec.standing,
                )
                if row is None
                else _renewed(row, spec)
            )
            if refusal := await _refusal(session, spec):
                row.state, row.reason = "refused", refusal
            else:
                row.state, row.digest = "queued", await _approved(session, spec.algorithm)
            session.add(row)
            await self.audit.record(
                None,
                "api.federation.job",
                project=spec.project,
                actor=f"{spec.submitted_by} (at the hub)",
                address="hub",
                target=f"job {spec.id} attempt {spec.attempt}",
                outcome="success" if row.state == "queued" else "denied",
                detail=json.dumps(
                    {
                        "question": spec.question,
                        "algorithm": spec.algorithm,
                        "digest": row.digest,
                        "criteria": row.criteria,
                        "parameters": spec.parameters,
                        "rule": row.reason or "approved",
                    },
                    separators=(",", ":"),
                ),
            )
        self.wake.set()

    async def cancel(self, job_id: str) -> None:
        async with self.db.session() as session:
            row = await session.get(SiteJob, job_id, with_for_update=True)
            if row is None:
                return
            row.reported = ""  # the hub hears the state, cancelled or the one it ended in
            if row.state not in FINAL or (row.standing and row.state in REARMED):
                row.cancel = True
                if row.state != "running":  # a running one is stopped by its runner
                    row.state, row.reason = "cancelled", "cancelled at the hub"
                    row.updated_at = now()
            session.add(row)
        self.wake.set()

    async def send_pending(self) -> None:
        """Tell the hub every state it has not heard (a hub away hears it later)."""
        if not self.hub.url or not self.hub.has_credential:
            return
        async with self._sending:
            await self._send_pending()

    async def _send_pending(self) -> None:
        async with self.db.session() as session:
            rows = (
                await session.exec(
                    select(SiteJob).where(
                        col(SiteJob.reported)
                        != func.concat(
                            col(SiteJob.state),
                            "/",
                            cast(col(SiteJob.attempt), String),
                            "/",
                            cast(col(SiteJob.run), String),
                        )
                    )
                )
            ).all()
        for row in rows:
            said = f"{row.state}/{row.attempt}/{row.run}"
            await self._tell(
                row.id,
                JobReport.model_validate(
                    {
                        "attempt": row.attempt,
                        "run": row.run,
                        "state": row.state,
                        "as_of": row.updated_at,
                        "reason": row.reason,
                        "output": row.released,
                    }
                ),
            )
            async with self.db.session() as session:
                await session.exec(
                    update(SiteJob)
                    .where(
                        col(SiteJob.id) == row.id,
                        col(SiteJob.state) == row.state,
                        col(SiteJob.attempt) == row.attempt,
                        col(SiteJob.run) == row.run,
                    )
                    .values(reported=said)
                )

    async def _tell(self, job_id: str, report: JobReport) -> None:
        path = f"/api/federation/jobs/{job_id}/report"
        response = await self.hub.request("PUT", path, json=report.model_dump(mode="json"))
        if response.status_code >= 400:
            raise RuntimeError(
                f"the hub answered PUT {path} with {response.status_code}: {response.text[:300]}"
            )

    # -- the steward -------------------------------------------------------------------------

    async def jobs(self, state: str | None = None, limit: int = 100) -> list[SiteJob]:
        async with self.db.session() as session:
            query = select(SiteJob).order_by(col(SiteJob.received_at).desc()).limit(limit)
            if state is not None:
                query = query.where(SiteJob.state == state)
            return list((await session.exec(query)).all())

    async def job(self, job_id: str) -> SiteJob:
        async with self.db.session() as session:
            row = await session.get(SiteJob, job_id)
        if row is None:
            raise NotFound(f"no job {job_id} at this site")
        return row

    async def decide(self, job_id: str, decision: DecisionIn, by: str) -> SiteJob:
        async with self.db.session() as session:
            row = await session.get(SiteJob, job_id, with_for_update=True)
            if row is None:
                raise NotFound(f"no job {job_id} at this site")
            if row.state != "awaiting_release":
                raise Conflict(
                    f"job {job_id} is {row.state}: only an output awaiting release is decided"
                )
            if decision.release:
                row.state, row.released = "done", row.output
                row.reason = f"released by the steward {by}" + (
                    f": {decision.reason}" if decision.reason else ""
                )
            else:
                row.state, row.released = "withheld", {}
                row.reason = f"withheld by the steward {by}" + (
                    f": {decision.reason}" if decision.reason else ""
                )
            row.decided_by, row.updated_at = by, now()
            session.add(row)
        return row


def _renewed(row: SiteJob, spec: JobSpec) -> SiteJob:
    """A retried job: a new attempt, everything of the last one forgotten but the audit."""
    row.attempt, row.parameters, row.run, row.seen_until = spec.attempt, spec.parameters, 1, None
    row.reason, row.output, row.released, row.decided_by = "", {}, {}, ""
    row.cancel, row.lease_until, row.series, row.updated_at = False, None, 0, now()
    return row


async def _approved(session: AsyncSession, name: str) -> str:
    row = await session.get(Approval, name)
    return row.digest if row else ""


async def _refusal(session: AsyncSession, spec: JobSpec) -> str:
    """Why this site will not run ``spec`` ('' when it will)."""
    policy = await session.get(Policy, 1) or Policy()
    if not policy.enabled:
        return "federation is off at this site"
    if await session.get(Project, spec.project) is None:
        return f"this site has no project {spec.project}"
    if spec.question:
        answered = await session.get(Answer, spec.question)
        if answered is None or answered.project != spec.project or answered.state != "answered":
            return f"this site answered no question {spec.question} on {spec.project}"
    approval = await session.get(Approval, spec.algorithm)
    if approval is None:
        return f"the algorithm {spec.algorithm} is not approved at this site"
    if spec.digest and spec.digest != approval.digest:
        return (
            f"the job asks for {spec.algorithm} with digest {spec.digest[:12]}…; this site"
            f" approved {approval.digest[:12]}…"
        )
    algorithm = installed().get(spec.algorithm)
    if algorithm is None or digest(algorithm.source()) != approval.digest:
        return (
            f"the code of {spec.algorithm} installed here is not the code approved"
            " (changed since): its admin must approve it again"
        )
    return ""

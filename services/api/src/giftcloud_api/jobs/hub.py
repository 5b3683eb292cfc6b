"""The hub's half of jobs: a researcher submits one to the project's sites; each site takes
its part when it next calls (the same held-open request as questions), runs it or refuses
it, and reports its state and released output. Cancel and retry are asked here and carried
to the site the same way."""

from __future__ import annotations

import uuid
from datetime import timedelta

from giftcloud_core.clock import now
from giftcloud_core.db import Database
from giftcloud_core.errors import BadRequest, Conflict, NotFound
from giftcloud_core.settings import FederationSettings
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from giftcloud_api.federation.models import FederatedSite, Question
from giftcloud_api.federation.schemas import Task
from giftcloud_api.jobs.models import HubJob, HubJobPart
from giftcloud_api.jobs.schemas import FINAL, JobIn, JobOut, JobPartOut, JobReport, JobSpec


class HubJobs:
    def __init__(self, db: Database, settings: FederationSettings) -> None:
        self.db = db
        self.settings = settings

    async def submit(self, project: str, job: JobIn, by: str) -> str:
        async with self.db.session() as session:
            known = set((await session.exec(select(FederatedSite.name))).all())
        chosen = known if job.sites is None else set(job.sites)
        if unknown := sorted(chosen - known):
            raise BadRequest(
                f"no registered site {', '.join(unknown)}; the sites: {', '.join(sorted(known)) or 'none'}"
            )
        if not chosen:
            raise Conflict("no site is registered at this hub to run a job")
        if job.question:
            async with self.db.session() as session:
                asked = await session.get(Question, job.question)
            if asked is None or asked.project != project:
                raise NotFound(f"no question {job.question} on {project}")
        row = HubJob(
            id=str(uuid.uuid4()),
            project=project,
            algorithm=job.algorithm,
            digest=job.digest,
            criteria=[p.model_dump(mode="json") for p in job.criteria],
            question=job.question,
            parameters=job.parameters,
            submitted_by=by,
            standing=job.standing,
        )
        async with self.db.session() as session:
            session.add(row)
            await session.flush()
            session.add_all(HubJobPart(job=row.id, site=name) for name in sorted(chosen))
        return row.id

    async def claim(self, site: str, granted: set[str]) -> list[Task]:
        """The jobs (and cancellations) waiting for ``site``; one the site took but did not
        confirm within the answer time is offered again (a site takes a job once)."""
        again = now() - timedelta(seconds=self.settings.answer_seconds)
        unconfirmed = or_(col(HubJobPart.fetched_at).is_(None), col(HubJobPart.fetched_at) < again)
        async with self.db.session() as session:
            rows = (
                await session.exec(
                    select(HubJobPart, HubJob)
                    .join(HubJob, col(HubJob.id) == col(HubJobPart.job))
                    .where(
                        HubJobPart.site == site,
                        unconfirmed,
                        or_(HubJobPart.state == "pending", col(HubJobPart.cancel)),
                    )
                    .order_by(col(HubJob.submitted_at))
                    .limit(20)
                    .with_for_update(of=HubJobPart, skip_locked=True)
                )
            ).all()
            tasks = []
            for part, job in rows:
                part.fetched_at = now()
                if part.cancel:
                    tasks.append(_task(job, part, "cancel"))
                elif job.project not in granted:
                    part.state, part.updated_at = "refused", now()
                    part.reason = f"the site's credential has no role on {job.project} at the hub"
                else:
                    tasks.append(_task(job, part, "job"))
                session.add(part)
        return tasks

    async def report(self, site: str, job_id: str, report: JobReport) -> HubJob:
        """A site's word on its part; one about an earlier attempt (before a retry) or an
        earlier run is ignored. Each run's released output is kept."""
        async with self.db.session() as session:
            part = await session.get(HubJobPart, (job_id, site), with_for_update=True)
            job = await session.get(HubJob, job_id)
            if part is None or job is None:
                raise NotFound(f"job {job_id} was not given to {site}")
            if _newer(report, part):
                part.state, part.reason, part.run = report.state, report.reason, report.run
                part.as_of = report.as_of
                part.updated_at = now()
                if report.output:
                    part.output = report.output
                    kept = [r for r in part.released if r["run"] != report.run]
                    at = part.updated_at.isoformat()
                    part.released = [*kept, {"run": report.run, "output": report.output, "at": at}]
                if _ended(job.standing, part.state):
                    part.cancel = False
                session.add(part)
        return job

    async def cancel(self, project: str, job_id: str, site: str | None) -> JobOut:
        """A part not yet taken is cancelled here; a taken one is cancelled at its site."""
        standing = (await self.job(project, job_id)).standing
        async with self.db.session() as session:
            for part in await self._parts(session, project, job_id, site):
                if _ended(standing, part.state):
                    continue
                if part.state == "pending" and part.fetched_at is None:
                    part.state, part.reason = "cancelled", "cancelled before the site took it"
                else:
                    part.cancel, part.fetched_at = True, None
                part.updated_at = now()
                session.add(part)
        return await self.job(project, job_id)

    async def retry(self, project: str, job_id: str, site: str | None) -> JobOut:
        """Parts that ended otherwise than done run again, as a new attempt."""
        retried = 0
        async with self.db.session() as session:
            for part in await self._parts(session, project, job_id, site):
                if part.state in FINAL and part.state != "done":
                    part.state, part.reason, part.output, part.released = "pending", "", {}, []
                    part.attempt, part.run, part.fetched_at = part.attempt + 1, 1, None
                    part.as_of = None
                    part.cancel = False
                    part.updated_at = now()
                    session.add(part)
                    retried += 1
        if not retried:
            raise Conflict("no part of that job ended refused, withheld, failed or cancelled")
        return await self.job(project, job_id)

    async def _parts(
        self, session: AsyncSession, project: str, job_id: str, site: str | None
    ) -> list[HubJobPart]:
        """The job's parts (``site``'s only, when given), locked for a change."""
        job = await session.get(HubJob, job_id)
        if job is None or job.project != project:
            raise NotFound(f"no job {job_id} on {project}")
        query = select(HubJobPart).where(HubJobPart.job == job_id)
        if site is not None:
            query = query.where(HubJobPart.site == site)
        found = list((await session.exec(query.with_for_update())).all())
        if site is not None and not found:
            raise NotFound(f"job {job_id} was not given to {site}")
        return found

    async def jobs(self, project: str, limit: int = 50) -> list[JobOut]:
        async with self.db.session() as session:
            rows = (
                await session.exec(
                    select(HubJob)
                    .where(HubJob.project == project)
                    .order_by(col(HubJob.submitted_at).desc())
                    .limit(limit)
                )
            ).all()
            parts = (
                await session.exec(
                    select(HubJobPart).where(col(HubJobPart.job).in_([j.id for j in rows]))
                )
            ).all()
        return [_out(j, [p for p in parts if p.job == j.id]) for j in rows]

    async def job(self, project: str, job_id: str) -> JobOut:
        async with self.db.session() as session:
            found = await session.get(HubJob, job_id)
            if found is None or found.project != project:
                raise NotFound(f"no job {job_id} on {project}")
            parts = (await session.exec(select(HubJobPart).where(HubJobPart.job == job_id))).all()
        return _out(found, list(parts))


def _newer(report: JobReport, part: HubJobPart) -> bool:
    """Whether ``report`` is newer than what the hub has of the part (not of an earlier
    attempt, an earlier run, or an earlier state of the same run that arrived late)."""
    if report.attempt != part.attempt or report.run < part.run:
        return False
    return report.run > part.run or part.as_of is None or report.as_of >= part.as_of


def _ended(standing: bool, state: str) -> bool:
    """A part that will not change by itself: a standing job runs on until cancelled."""
    if standing:
        return state in ("cancelled", "refused")
    return state in FINAL


def _task(job: HubJob, part: HubJobPart, kind: str) -> Task:
    spec = JobSpec(
        id=job.id,
        project=job.project,
        algorithm=job.algorithm,
        digest=job.digest,
        criteria=job.criteria,  # validated into predicates
        question=job.question,
        parameters=job.parameters,
        submitted_by=job.submitted_by,
        attempt=part.attempt,
        standing=job.standing,
    )
    return Task(
        id=job.id,
        project=job.project,
        kind=kind,
        job=spec.model_dump(mode="json"),
        asked_by=job.submitted_by,
        asked_at=job.submitted_at,
    )


def _out(job: HubJob, parts: list[HubJobPart]) -> JobOut:
    return JobOut(
        id=job.id,
        project=job.project,
        algorithm=job.algorithm,
        digest=job.digest,
        criteria=job.criteria,
        question=job.question,
        parameters=job.parameters,
        submitted_by=job.submitted_by,
        submitted_at=job.submitted_at,
        standing=job.standing,
        parts=[
            JobPartOut.model_validate(p, from_attributes=True)
            for p in sorted(parts, key=lambda p: p.site)
        ],
    )

"""Running a site's queued jobs, one at a time per api process: the cohort's de-identified
instances copied out of the archive into a folder of their own, the approved algorithm run
on them in a child process (no settings, no credentials in its environment, a time limit,
cancelled when the hub cancels), and its output released at once only when it is an
aggregate the site's disclosure control leaves unchanged; anything else waits for the
steward. A job whose runner died is run again once its lease has passed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from giftcloud_core.clock import now
from giftcloud_core.db import Database
from giftcloud_core.settings import FederationSettings
from giftcloud_core.storage import ObjectStore
from pydantic import ValidationError
from sqlalchemy import func
from sqlmodel import col, or_, select, update

from giftcloud_api.federation import disclosure
from giftcloud_api.federation.catalogue import facts
from giftcloud_api.federation.criteria import Predicate
from giftcloud_api.federation.criteria import chosen as chosen_facts
from giftcloud_api.federation.models import Answer, Policy
from giftcloud_api.jobs.images import KEPT, BadImage, Images
from giftcloud_api.jobs.models import Approval, SiteJob
from giftcloud_api.jobs.schemas import REARMED, Aggregate
from giftcloud_api.jobs.site import SiteJobs
from giftcloud_api.models import Instance

log = logging.getLogger(__name__)

#: a running job's lease, renewed while it runs
LEASE_SECONDS = 60.0
#: how often a running job's cancellation and lease are looked at
LOOK_SECONDS = 1.0


class Outcome(Exception):
    """How a run ended otherwise than with an output: the state and the reason."""

    def __init__(self, state: str, reason: str) -> None:
        super().__init__(reason)
        self.state = state


class JobRunner:
    def __init__(
        self,
        db: Database,
        store: ObjectStore,
        bucket: str,
        settings: FederationSettings,
        jobs: SiteJobs,
        images: Images,
    ) -> None:
        self.db = db
        self.store = store
        self.bucket = bucket
        self.settings = settings
        self.jobs = jobs
        self.images = images

    async def round(self, first: bool) -> bool:
        self.jobs.wake.clear()
        await self._rearm()
        job = await self._claim()
        if job is None:
            return False
        folder = Path(tempfile.mkdtemp(prefix=f"giftcloud-job-{job.id[:8]}-"))
        try:
            state, reason, output, released = await self._run(job, folder)
        except Outcome as ended:
            state, reason, output, released = ended.state, str(ended), {}, {}
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        async with self.db.session() as session:
            await session.exec(
                update(SiteJob)
                .where(
                    col(SiteJob.id) == job.id,
                    col(SiteJob.attempt) == job.attempt,
                    col(SiteJob.state) == "running",
                )
                .values(
                    state=state,
                    reason=reason,
                    output=output,
                    released=released,
                    lease_until=None,
                    updated_at=now(),
                )
            )
            # the rule that decided, recorded with the outcome (the output stays in the row)
            await self.jobs.audit.record(
                None,
                "api.federation.job.run",
                project=job.project,
                actor=f"{job.submitted_by} (at the hub)",
                address="hub",
                target=f"job {job.id} attempt {job.attempt} run {job.run}",
                outcome="failure" if state == "failed" else "success",
                detail=json.dumps(
                    {"state": state, "rule": reason, "released": bool(released)},
                    separators=(",", ":"),
                ),
            )
        with contextlib.suppress(Exception):  # the poller tells the hub if this cannot
            await self.jobs.send_pending()
        return True

    async def _rearm(self) -> None:
        """Queue again each standing job with instances archived since its last run (a
        standing job waits while its last output awaits the steward)."""
        async with self.db.session() as session:
            newer = (
                select(Instance.sop_uid)
                .where(
                    col(Instance.project) == col(SiteJob.project),
                    or_(
                        col(SiteJob.seen_until).is_(None),
                        col(Instance.archived_at) > col(SiteJob.seen_until),
                    ),
                )
                .exists()
            )
            rows = (
                await session.exec(
                    select(SiteJob)
                    .where(
                        col(SiteJob.standing),
                        col(SiteJob.state).in_(REARMED),
                        col(SiteJob.cancel).is_(False),
                        newer,
                    )
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for row in rows:
                if row.state != "waiting":  # a run that found nothing new is not counted
                    row.run += 1
                row.state, row.reason, row.updated_at = "queued", "", now()
                row.output, row.released, row.decided_by = {}, {}, ""
                session.add(row)

    async def _claim(self) -> SiteJob | None:
        async with self.db.session() as session:
            row = (
                await session.exec(
                    select(SiteJob)
                    .where(
                        or_(
                            col(SiteJob.state) == "queued",
                            (col(SiteJob.state) == "running") & (col(SiteJob.lease_until) < now()),
                        )
                    )
                    .order_by(col(SiteJob.received_at))
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
            ).first()
            if row is None:
                return None
            row.state, row.reason, row.updated_at = "running", "", now()
            row.lease_until = now() + timedelta(seconds=LEASE_SECONDS)
            session.add(row)
            await session.flush()
            await session.refresh(row)
        return row

    async def _run(
        self, job: SiteJob, folder: Path
    ) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
        inputs, output, images = folder / "inputs", folder / "output.json", folder / "images"
        async with self.db.session() as session:
            approval = await session.get(Approval, job.algorithm)
        if approval is None or approval.digest != job.digest:
            raise Outcome("refused", f"the approval of {job.algorithm} was withdrawn before it ran")
        series, studies = await self._cohort(job, inputs)
        images.mkdir()
        parameters = folder / "parameters.json"
        parameters.write_text(json.dumps(job.parameters))
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "giftcloud_api.jobs.child",
            job.algorithm,
            job.digest,
            str(inputs),
            str(parameters),
            str(output),
            str(images),
            cwd=folder,
            env={"PATH": os.environ.get("PATH", ""), "HOME": str(folder), "LANG": "C.UTF-8"},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        await self._watch(job, process)
        said = (await process.stderr.read() if process.stderr else b"").decode(errors="replace")
        if process.returncode != 0:
            lines = [line for line in said.strip().splitlines() if line.strip()]
            why = lines[-1] if lines else f"exit code {process.returncode}"
            raise Outcome("failed", f"{job.algorithm} failed: {why}"[:2000])
        if not output.exists() or output.stat().st_size > self.settings.job_output_bytes:
            raise Outcome(
                "failed",
                f"{job.algorithm} wrote no output, or more than"
                f" {self.settings.job_output_bytes} bytes",
            )
        result = json.loads(output.read_text())
        if not isinstance(result, dict):
            raise Outcome("failed", f"{job.algorithm}'s output is not a JSON object")
        try:
            kept = await self.images.keep(job.project, job.id, images, studies)
        except BadImage as bad:
            raise Outcome("failed", f"{job.algorithm}: {bad}") from None
        if kept and not result:  # images only: nothing is for the hub
            return "done", f"{KEPT}; nothing else was made", {}, {}
        state, reason, released = await self._release(result, series)
        return state, (f"{reason}; {KEPT}" if kept else reason), result, released

    async def _cohort(self, job: SiteJob, inputs: Path) -> tuple[int, dict[str, str]]:
        """Copy the cohort's instances into ``inputs``/SERIES/SOP.dcm; the count of series,
        and the cohort's studies with their subjects. A standing job's later runs take the
        series with instances archived since the last."""
        criteria = [Predicate.model_validate(p) for p in job.criteria]
        async with self.db.session() as session:
            until = (
                await session.exec(
                    select(func.max(Instance.archived_at)).where(Instance.project == job.project)
                )
            ).one()
            chosen = {
                fact.series for fact in chosen_facts(criteria, await facts(session, job.project))
            }
            if job.question:  # the series this site counted for the question, still here
                answered = await session.get(Answer, job.question)
                counted = set(answered.series) if answered is not None else set()
                chosen = {series for series in chosen if series in counted}
            if job.standing and job.seen_until is not None:
                chosen &= set(
                    (
                        await session.exec(
                            select(Instance.series_uid).where(
                                Instance.project == job.project,
                                col(Instance.archived_at) > job.seen_until,
                            )
                        )
                    ).all()
                )
            rows = (
                await session.exec(
                    select(
                        Instance.series_uid,
                        Instance.object_key,
                        Instance.study_uid,
                        Instance.subject,
                    ).where(Instance.project == job.project, col(Instance.series_uid).in_(chosen))
                )
            ).all()
            await session.exec(
                update(SiteJob)
                .where(col(SiteJob.id) == job.id)
                .values(series=len(chosen), seen_until=until)
            )
        if not chosen and job.standing:
            raise Outcome("waiting", "standing: waiting for new series that match its criteria")
        if not chosen:
            raise Outcome("refused", "no series at this site match the cohort's criteria")
        # folders by number: the algorithm sees no UID in a path (nor any in its output)
        numbered = {uid: n for n, uid in enumerate(sorted(chosen))}
        for number, (series_uid, key, _study, _subject) in enumerate(rows):
            folder = inputs / f"series-{numbered[series_uid]:05d}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{number:06d}.dcm").write_bytes(await self.store.get(self.bucket, key))
        return len(chosen), {study: subject for _, _, study, subject in rows}

    async def _watch(self, job: SiteJob, process: asyncio.subprocess.Process) -> None:
        """Wait for the child: its lease renewed, killed when cancelled or out of time."""
        deadline = asyncio.get_running_loop().time() + self.settings.job_seconds
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), LOOK_SECONDS)
                return
            async with self.db.session() as session:
                row = await session.get(SiteJob, job.id, with_for_update=True)
                cancelled = row is None or row.cancel or row.attempt != job.attempt
                if row is not None and not cancelled:
                    row.lease_until = now() + timedelta(seconds=LEASE_SECONDS)
                    session.add(row)
            late = asyncio.get_running_loop().time() > deadline
            if cancelled or late:
                process.kill()
                await process.wait()
                if cancelled:
                    raise Outcome("cancelled", "cancelled at the hub while it ran")
                raise Outcome("failed", f"{job.algorithm} ran past {self.settings.job_seconds:g} s")

    async def _release(
        self, result: dict[str, Any], series: int
    ) -> tuple[str, str, dict[str, Any]]:
        async with self.db.session() as session:
            policy = await session.get(Policy, 1) or Policy()
        return release(result, policy.k, series)


def release(result: dict[str, Any], k: int, series: int) -> tuple[str, str, dict[str, Any]]:
    """State, reason and what leaves: released now when an aggregate (cells that partition
    its total) passes the site's disclosure control unchanged; else held for the steward."""
    try:
        aggregate = Aggregate.model_validate(result)
    except ValidationError:
        return "awaiting_release", "held for the steward: not an aggregate of counts", {}
    cells = {tuple(cell.key): cell.count for cell in aggregate.cells}
    if len(cells) != len(aggregate.cells) or sum(cells.values()) != aggregate.total:
        return "awaiting_release", "held for the steward: its cells do not add up", {}
    checked = disclosure.protect(cells, aggregate.total, k)
    if checked.total is None or any(c.count != cells[c.key] for c in checked.cells):
        return (
            "awaiting_release",
            f"held for the steward: a count below k = {k} ({series} series)",
            {},
        )
    return "done", f"released: an aggregate, every count at least k = {k}", result

"""The hub's half: the sites it knows, the questions its researchers ask, each site's part.
A site calls in (outbound from the hospital), is told the questions for it, answers them;
the hub pools what was released and never sees more."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta

from giftcloud_core.clock import now
from giftcloud_core.db import Database
from giftcloud_core.errors import BadRequest, Conflict, Forbidden, NotFound
from giftcloud_core.settings import FederationSettings
from giftcloud_core.tokens import Principal
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select, update

from giftcloud_api.federation.criteria import CountQuestion
from giftcloud_api.federation.models import FederatedSite, Part, Question
from giftcloud_api.federation.schemas import (
    AskCount,
    Heartbeat,
    PartOut,
    Pooled,
    PooledCell,
    QuestionOut,
    SiteAnswer,
    SiteIn,
    Task,
)

#: how often a site's held-open request for questions looks again
_LOOK_SECONDS = 0.25
#: other work handed to a site on the same request (jobs): ``claim(site, granted)``
Claim = Callable[[str, set[str]], Awaitable[list[Task]]]


class HubFederation:
    def __init__(
        self, db: Database, settings: FederationSettings, claims: Iterable[Claim] = ()
    ) -> None:
        self.db = db
        self.settings = settings
        self.claims = list(claims)

    async def register(self, site: SiteIn, by: str) -> FederatedSite:
        row = FederatedSite(
            name=site.name,
            client_id=site.client_id,
            capabilities=list(site.capabilities),
            registered_by=by,
        )
        try:
            async with self.db.session() as session:
                session.add(row)
                await session.flush()
                await session.refresh(row)
        except IntegrityError as exc:
            raise Conflict(
                f"a site {site.name!r} or one with that credential is registered"
            ) from exc
        return row

    async def sites(self) -> list[FederatedSite]:
        async with self.db.session() as session:
            return list(
                (await session.exec(select(FederatedSite).order_by(FederatedSite.name))).all()
            )

    async def forget(self, name: str) -> None:
        async with self.db.session() as session:
            found = await session.get(FederatedSite, name)
            if found is None:
                raise NotFound(f"no site {name!r} is registered")
            await session.delete(found)

    async def site_of(self, caller: Principal) -> FederatedSite:
        """The registered site calling (403 for anyone else: a person, another key)."""
        if caller.kind == "client":
            async with self.db.session() as session:
                found = (
                    await session.exec(
                        select(FederatedSite).where(FederatedSite.client_id == caller.subject)
                    )
                ).first()
            if found is not None:
                return found
        raise Forbidden("only a registered site's machine credential takes federated questions")

    async def heartbeat(self, site: str, beat: Heartbeat) -> None:
        async with self.db.session() as session:
            await session.exec(
                update(FederatedSite)
                .where(col(FederatedSite.name) == site)
                .values(
                    last_seen_at=now(),
                    enabled=beat.enabled,
                    version=beat.version,
                    policy=beat.policy,
                )
            )

    async def ask(self, project: str, asked: AskCount, by: str) -> str:
        """Store the question with a pending part for each site asked."""
        known = {site.name for site in await self.sites()}
        chosen = known if asked.sites is None else set(asked.sites)
        if unknown := sorted(chosen - known):
            raise BadRequest(
                f"no registered site {', '.join(unknown)}; the sites: {', '.join(sorted(known)) or 'none'}"
            )
        if not chosen:
            raise Conflict("no site is registered at this hub to ask")
        question = Question(
            id=str(uuid.uuid4()),
            project=project,
            question=asked.question().model_dump(mode="json"),
            asked_by=by,
        )
        async with self.db.session() as session:
            session.add(question)
            session.add_all(Part(question=question.id, site=name) for name in sorted(chosen))
        return question.id

    async def tasks(
        self,
        site: FederatedSite,
        granted: Iterable[str],
        wait: float,
        gone: Callable[[], Awaitable[bool]],
    ) -> list[Task]:
        """The questions waiting for ``site``, held open up to ``wait`` seconds while there are
        none. A question on a project the site's credential has no role on is refused here."""
        granted = set(granted)
        await self._touch(site.name)
        deadline = asyncio.get_running_loop().time() + wait
        while not await gone():  # a site that went away takes nothing: no one would get it
            found = await self._claim(site.name, granted)
            for claim in self.claims:
                found += await claim(site.name, granted)
            if found or asyncio.get_running_loop().time() >= deadline:
                return found
            await asyncio.sleep(_LOOK_SECONDS)
        return []

    async def _touch(self, site: str) -> None:
        async with self.db.session() as session:
            await session.exec(
                update(FederatedSite)
                .where(col(FederatedSite.name) == site)
                .values(last_seen_at=now())
            )

    async def _claim(self, site: str, granted: set[str]) -> list[Task]:
        async with self.db.session() as session:
            rows = (
                await session.exec(
                    select(Part, Question)
                    .join(Question, col(Question.id) == col(Part.question))
                    .where(
                        Part.site == site,
                        Part.state == "pending",
                        col(Question.asked_at) >= self._cutoff(),  # not one whose time is up
                    )
                    .order_by(col(Question.asked_at))
                    .limit(20)
                )
            ).all()
            tasks = []
            for part, question in rows:
                if question.project not in granted:
                    part.state, part.answered_at = "refused", now()
                    part.reason = (
                        f"the site's credential has no role on {question.project} at the hub"
                    )
                else:
                    part.fetched_at = now()
                    tasks.append(
                        Task(
                            id=question.id,
                            project=question.project,
                            kind="count",
                            question=CountQuestion.model_validate(question.question),
                            asked_by=question.asked_by,
                            asked_at=question.asked_at,
                        )
                    )
                session.add(part)
        return tasks

    async def answer(self, site: str, question_id: str, answer: SiteAnswer) -> Question:
        async with self.db.session() as session:
            part = await session.get(Part, (question_id, site), with_for_update=True)
            if part is None:
                raise NotFound(f"question {question_id} was not asked of {site}")
            if part.state != "pending":
                raise Conflict(f"that part is {part.state} already ({part.reason or 'answered'})")
            part.state, part.reason, part.answered_at = answer.state, answer.reason, now()
            part.answer = answer.model_dump(mode="json")
            session.add(part)
            question = await session.get(Question, question_id)
            assert question is not None
        return question

    async def expire(self) -> None:
        """A part still pending when its time is up fails, saying what the hub knows of the
        site (run when questions are read, not on every look of a site's held request)."""
        async with self.db.session() as session:
            rows = (
                await session.exec(
                    select(Part, FederatedSite.last_seen_at)
                    .join(Question, col(Question.id) == col(Part.question))
                    .join(FederatedSite, col(FederatedSite.name) == col(Part.site), isouter=True)
                    .where(Part.state == "pending", col(Question.asked_at) < self._cutoff())
                    .with_for_update(of=Part, skip_locked=True)
                )
            ).all()
            for part, seen in rows:
                part.state, part.answered_at = "failed", now()
                part.reason = _silent(self.settings.answer_seconds, part, seen)
                session.add(part)

    def _cutoff(self) -> datetime:
        """Questions asked before this are past their time."""
        return now() - timedelta(seconds=self.settings.answer_seconds)

    async def questions(self, project: str, limit: int = 50) -> list[QuestionOut]:
        await self.expire()
        async with self.db.session() as session:
            asked = (
                await session.exec(
                    select(Question)
                    .where(Question.project == project)
                    .order_by(col(Question.asked_at).desc())
                    .limit(limit)
                )
            ).all()
            parts = (
                await session.exec(
                    select(Part).where(col(Part.question).in_([q.id for q in asked]))
                )
            ).all()
        return [_out(q, [p for p in parts if p.question == q.id]) for q in asked]

    async def question(self, project: str, question_id: str) -> QuestionOut:
        await self.expire()
        async with self.db.session() as session:
            found = await session.get(Question, question_id)
            if found is None or found.project != project:
                raise NotFound(f"no question {question_id} on {project}")
            parts = (await session.exec(select(Part).where(Part.question == question_id))).all()
        return _out(found, list(parts))


def _silent(seconds: float, part: Part, seen: datetime | None) -> str:
    """Why a part failed: no answer in time, and what the hub knows of the site."""
    said = f"no answer within {seconds:g} s; "
    if part.fetched_at is not None:
        return (
            said + f"the site took the question at {part.fetched_at.isoformat(timespec='seconds')}"
        )
    return (
        said
        + "the site was "
        + (f"last seen {seen.isoformat(timespec='seconds')}" if seen else "never seen")
    )


def _out(question: Question, parts: list[Part]) -> QuestionOut:
    shown = [
        PartOut(
            site=part.site,
            state=part.state,
            reason=part.reason,
            answered_at=part.answered_at,
            answer=SiteAnswer.model_validate(part.answer) if part.answer else None,
        )
        for part in sorted(parts, key=lambda p: p.site)
    ]
    return QuestionOut(
        id=question.id,
        project=question.project,
        kind=question.kind,
        question=CountQuestion.model_validate(question.question),
        asked_by=question.asked_by,
        asked_at=question.asked_at,
        parts=shown,
        pooled=pool(shown),
    )


def pool(parts: list[PartOut]) -> Pooled:
    """Sum the released cells and totals of the sites that answered; a cell some site
    suppressed is marked partial (its part is not in the sum, nor guessed)."""
    answered = [(p.site, p.answer) for p in parts if p.state == "answered" and p.answer]
    cells: dict[tuple[str, ...], PooledCell] = {}
    total = 0
    for site, answer in answered:
        total += answer.total or 0
        for cell in answer.cells:
            key = tuple(cell.key)
            pooled = cells.setdefault(
                key, PooledCell(key=list(key), count=0, sites=[], partial=False)
            )
            if cell.count is None:
                pooled.partial = True
            else:
                pooled.count += cell.count
                pooled.sites.append(site)
    return Pooled(
        cells=[cells[key] for key in sorted(cells)],
        total=total,
        sites=[site for site, answer in answered if answer.total is not None],
    )

"""The site's half: its disclosure policy, set by its admin alone, and its answers. A
question is checked again here (a site never trusts its hub), counted on this site's own
catalogue, released under the policy, and recorded with the raw table beside the released
one, who asked and which rule decided. The same question over the same data gets the same
answer, so noise cannot be averaged away by asking again."""

from __future__ import annotations

import json
from typing import Any

from giftcloud_core.access import Auditor
from giftcloud_core.clock import now
from giftcloud_core.db import Database
from sqlalchemy import func, text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from giftcloud_api.federation import disclosure
from giftcloud_api.federation.catalogue import facts
from giftcloud_api.federation.criteria import Table, tabulate
from giftcloud_api.federation.models import Answer, Policy
from giftcloud_api.federation.schemas import CellOut, PolicyIn, SiteAnswer, Task
from giftcloud_api.models import Project


class SiteFederation:
    def __init__(self, db: Database, audit: Auditor) -> None:
        self.db = db
        self.audit = audit

    async def policy(self) -> Policy:
        async with self.db.session() as session:
            return await session.get(Policy, 1) or Policy()

    async def set_policy(self, policy: PolicyIn, by: str) -> Policy:
        async with self.db.session() as session:
            row = await session.get(Policy, 1) or Policy()
            for name, value in policy.model_dump().items():
                setattr(row, name, value)
            row.updated_by, row.updated_at = by, now()
            session.add(row)
        return row

    async def answers(self, limit: int = 100) -> list[Answer]:
        async with self.db.session() as session:
            query = select(Answer).order_by(col(Answer.answered_at).desc()).limit(limit)
            return list((await session.exec(query)).all())

    async def undelivered(self) -> list[Answer]:
        async with self.db.session() as session:
            query = (
                select(Answer)
                .where(col(Answer.delivered).is_(False))
                .order_by(col(Answer.answered_at))
            )
            return list((await session.exec(query)).all())

    async def delivered(self, question: str) -> None:
        async with self.db.session() as session:
            row = await session.get(Answer, question)
            if row is not None:
                row.delivered = True
                session.add(row)

    async def answer(self, task: Task) -> SiteAnswer:
        """This site's answer to ``task`` (the one already given, when it was asked before)."""
        async with self.db.session() as session:
            connection = await session.connection()
            # one answer at a time per project across replicas: the budget is spent once
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))"),
                {"name": f"giftcloud.federation:{task.project}"},
            )
            given = await session.get(Answer, task.id)
            if given is not None:
                return SiteAnswer.model_validate(given.released)
            row = await self._decide(session, task)
            session.add(row)
            # recorded before the answer is kept: an answer is never given unaudited
            await self.audit.record(
                None,
                "api.federation.count",
                project=task.project,
                actor=f"{task.asked_by} (at the hub)",
                address="hub",
                target=f"question {task.id}",
                outcome="success" if row.state == "answered" else "denied",
                detail=json.dumps(
                    {
                        "question": row.body,
                        "raw": row.raw,
                        "released": row.released,
                        "rule": row.reason,
                    },
                    separators=(",", ":"),
                ),
            )
        return SiteAnswer.model_validate(row.released)

    async def _decide(self, session: AsyncSession, task: Task) -> Answer:
        question = task.question
        assert question is not None  # a count task carries its question
        row = Answer(
            question=task.id,
            project=task.project,
            asked_by=task.asked_by,
            digest=question.digest(),
            body=question.model_dump(mode="json"),
            state="refused",
        )
        policy = await session.get(Policy, 1) or Policy()
        if refusal := await _refusal(session, task, policy):
            row.reason = refusal
            row.released = SiteAnswer(state="refused", reason=refusal).model_dump(mode="json")
            return row
        table = tabulate(question, await facts(session, task.project))
        row.raw = _table(table)
        row.raw_digest = table.digest()
        row.series = list(table.series)
        same = (
            await session.exec(
                select(Answer).where(
                    Answer.project == task.project,
                    Answer.digest == row.digest,
                    Answer.raw_digest == row.raw_digest,
                    Answer.state == "answered",
                )
            )
        ).first()
        if same is not None:  # asked before over the same data: the same answer, no budget
            row.state, row.released = "answered", same.released
            row.reason = (
                f"the answer given to question {same.question} (the same question and data)"
            )
            return row
        k = max(policy.k, question.k or 0)
        if question.epsilon is not None:
            spent = await _spent(session, task.project, task.asked_by)
            if spent + question.epsilon > policy.budget + 1e-9:
                row.reason = (
                    f"the privacy budget of {task.asked_by} on {task.project} at this site would"
                    f" be passed: {spent:g} of {policy.budget:g} spent, {question.epsilon:g} asked"
                )
                row.released = SiteAnswer(state="refused", reason=row.reason).model_dump(
                    mode="json"
                )
                return row
            sensitivity = question.sensitivity() or 1
            released = disclosure.protect_noisy(
                disclosure.noisy(table.cells, question.epsilon, sensitivity), k
            )
            row.epsilon = question.epsilon
        else:
            released = disclosure.protect(table.cells, table.total, k)
        row.state = "answered"
        row.reason = f"k = {k} (site policy {policy.k})" + (
            f", noise epsilon {question.epsilon:g}" if question.epsilon is not None else ""
        )
        row.released = SiteAnswer(
            state="answered",
            cells=[CellOut(key=list(c.key), count=c.count, rule=c.rule) for c in released.cells],
            total=released.total,
            total_rule=released.total_rule,
            k=k,
            epsilon=question.epsilon,
        ).model_dump(mode="json")
        return row


async def _refusal(session: AsyncSession, task: Task, policy: Policy) -> str:
    """Why this site will not answer ``task`` ('' when it will)."""
    question = task.question
    assert question is not None
    if not policy.enabled:
        return "federation is off at this site"
    if await session.get(Project, task.project) is None:
        return f"this site has no project {task.project}"
    if question.epsilon is not None and policy.noise == "off":
        return "this site adds no noise to its answers: ask without epsilon"
    if question.epsilon is None and policy.noise == "required":
        return "this site answers only with noise: ask with an epsilon"
    if question.epsilon is not None and question.sensitivity() is None:
        return (
            f"with noise, group {question.unit} only by attributes one of them has a single"
            " value of (a subject by patient_sex; a study by its own or its subject's)"
        )
    return ""


async def _spent(session: AsyncSession, project: str, asked_by: str) -> float:
    query = select(func.coalesce(func.sum(Answer.epsilon), 0.0)).where(
        Answer.project == project, Answer.asked_by == asked_by
    )
    return float((await session.exec(query)).one())


def _table(table: Table) -> dict[str, Any]:
    return {
        "cells": [[list(key), n] for key, n in sorted(table.cells.items())],
        "total": table.total,
    }

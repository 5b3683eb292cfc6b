"""Learning's privacy budget at a site, in its PostgreSQL: a round is recorded against who
asked unless it would pass the budget (409 with the reason, nothing recorded); each person
has their own; rounds spent at the same moment are spent one at a time, never past it."""

from __future__ import annotations

import asyncio

import pytest
from giftcloud_api.app import build as build_api
from giftcloud_api.flower.schemas import SpendIn
from giftcloud_api.flower.service import FlowerApps
from giftcloud_core.app import Runtime
from giftcloud_core.errors import Conflict, Forbidden
from giftcloud_core.tokens import Principal
from integration.conftest import running


async def test_rounds_are_spent_until_the_budget_then_refused(runtime: Runtime) -> None:
    async with running(runtime, [build_api(runtime)]):
        ledger = FlowerApps(runtime.db)
        spent = await ledger.spend("budget-p", SpendIn(asked_by="rosa", epsilon=2, budget=5, run=7))
        assert (spent.spent, spent.budget) == (2, 5)
        assert (
            await ledger.spend("budget-p", SpendIn(asked_by="rosa", epsilon=2, budget=5))
        ).spent == 4
        with pytest.raises(Conflict, match="rosa on budget-p at this site would be passed: 4 of 5"):
            await ledger.spend("budget-p", SpendIn(asked_by="rosa", epsilon=2, budget=5))
        # the refusal recorded nothing; sam's budget and another project's are their own
        with pytest.raises(Conflict, match="4 of 5 spent"):
            await ledger.spend("budget-p", SpendIn(asked_by="rosa", epsilon=1.5, budget=5))
        assert (
            await ledger.spend("budget-p", SpendIn(asked_by="sam", epsilon=2, budget=5))
        ).spent == 2
        assert (
            await ledger.spend("budget-q", SpendIn(asked_by="rosa", epsilon=2, budget=5))
        ).spent == 2

        # ten rounds at once against a budget of three: exactly three are spent
        async def one() -> bool:
            try:
                await ledger.spend("budget-r", SpendIn(asked_by="rosa", epsilon=1, budget=3))
            except Conflict:
                return False
            return True

        taken = await asyncio.gather(*(one() for _ in range(10)))
        assert sum(taken) == 3


async def test_only_the_registered_gate_s_key_reports_and_spends(runtime: Runtime) -> None:
    async with running(runtime, [build_api(runtime)]):
        ledger = FlowerApps(runtime.db)
        gate = Principal("gck_gate", kind="client", projects={"p": "member"})
        with pytest.raises(Forbidden, match="its admin registers the gate's API key"):
            await ledger.check_gate(gate)  # none registered yet: nobody
        await ledger.register_gate("gck_gate", "admin")
        await ledger.check_gate(gate)
        for other in (
            Principal("gck_other", kind="client", projects={"p": "member"}),  # a member's key
            Principal("gck_gate", projects={"p": "owner"}),  # a person by that name
        ):
            with pytest.raises(Forbidden):
                await ledger.check_gate(other)

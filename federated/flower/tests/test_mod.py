"""The site's mod around an app's replies, beyond the shapes of test_disclosure:
differential privacy on learning, set by the site — every training reply clipped and noised
by Flower's own LocalDpMod, whatever the app does; statistics and evaluation pass as before;
the exact loss does not leave; the audit names the mechanism — and an app that fails, whose
own words stay at the site."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flwr.app import (
    ArrayRecord,
    ConfigRecord,
    Context,
    Error,
    Message,
    MessageType,
    Metadata,
    MetricRecord,
    RecordDict,
)
from flwr.app.message.message import make_message
from giftcloud_flower.disclosure import FAILED, Withheld, mod_for
from giftcloud_flower.site import Learning, Site, SiteConfigError, load

START = np.zeros(20_000)


def received(kind: str = MessageType.TRAIN) -> Message:
    content = RecordDict({"arrays": ArrayRecord([START]), "config": ConfigRecord({"lr": 0.5})})
    if kind == MessageType.QUERY:
        content = RecordDict({"config": ConfigRecord({"bins": 4})})
    asked = Metadata(
        run_id=1, message_id="m1", src_node_id=0, dst_node_id=1, reply_to_message_id="",
        group_id="1", created_at=time.time(), ttl=60.0, message_type=kind,
    )  # fmt: skip
    return make_message(asked, content)  # as the SuperNode hands a message to the app


def app_moving_by(update: np.ndarray, loss: float = 0.25) -> Any:
    """A ClientApp whose training reply moves the weights by ``update``."""

    def app(message: Message, context: Context) -> Message:
        if message.metadata.message_type == MessageType.QUERY:
            stats = MetricRecord({"count": 20, "sum.age": 900.0})
            return Message(RecordDict({"statistics": stats}), reply_to=message)
        metrics = MetricRecord({"num-examples": 12, "loss": loss})
        reply = RecordDict({"arrays": ArrayRecord([START + update]), "metrics": metrics})
        return Message(reply, reply_to=message)

    return app


def with_learning(
    site: Site, clipping_norm: float, epsilon: float, delta: float, budget: float | None = None
) -> Site:
    learning = Learning(clipping_norm, epsilon, delta, budget)
    return dataclasses.replace(site, policy=dataclasses.replace(site.policy, learning=learning))


def run(
    site: Site,
    app: Any,
    message: Message,
    run_config: dict[str, Any] | None = None,
    spend: Any = None,
) -> tuple[Message, list[dict[str, object]]]:
    notes: list[dict[str, object]] = []
    context = Context(
        run_id=1, node_id=1, node_config={}, state=RecordDict(), run_config=run_config or {}
    )
    reply = mod_for(site, record=notes.append, spend=spend)(message, context, app)
    return reply, notes


def weights(reply: Message) -> np.ndarray:
    found: np.ndarray = reply.content.array_records["arrays"].to_numpy_ndarrays()[0]
    return found


def test_without_learning_a_model_update_leaves_exact(site: Site) -> None:
    update = np.full(START.shape, 0.01)
    reply, notes = run(site, app_moving_by(update), received())
    assert np.array_equal(weights(reply), START + update)
    assert reply.content.metric_records["metrics"]["loss"] == 0.25
    assert "noise" not in notes[-1]


def test_an_update_is_clipped_to_the_site_s_norm_and_noised_by_its_epsilon(site: Site) -> None:
    learning = with_learning(site, clipping_norm=2.0, epsilon=1.0, delta=1e-5)
    big = np.full(START.shape, 1.0)  # norm ~141, far above 2
    reply, notes = run(learning, app_moving_by(big), received())
    sent = weights(reply) - START
    std = 2.0 * math.sqrt(2 * math.log(1.25 / 1e-5)) / 1.0
    # the clipped update (norm 2 over 20,000 weights: 0.014 each) is small against the noise:
    # what leaves is the noise, with the mechanism's standard deviation (within 3 %)
    assert abs(float(np.std(sent)) - std) < 0.03 * std, (np.std(sent), std)
    assert abs(float(np.mean(sent)) - 2.0 / math.sqrt(START.size)) < 5 * std / math.sqrt(START.size)
    # the exact loss on the site's data does not leave
    assert set(reply.content.metric_records["metrics"].keys()) == {"num-examples"}
    [note] = notes
    assert note["decision"] == "released"
    assert note["noise"] == {
        "mechanism": "Gaussian, Flower's LocalDpMod",
        "clipping_norm": 2.0,
        "epsilon": 1.0,
        "delta": 1e-5,
        "std": pytest.approx(std),
    }


def test_with_almost_no_noise_the_update_is_the_clipped_one(site: Site) -> None:
    learning = with_learning(site, clipping_norm=0.5, epsilon=1e9, delta=1e-5)
    update = np.linspace(-1.0, 1.0, START.size)
    reply, _ = run(learning, app_moving_by(update), received())
    sent = weights(reply) - START
    assert np.linalg.norm(sent) == pytest.approx(0.5, rel=1e-4)  # clipped to the site's norm
    assert np.allclose(sent / np.linalg.norm(sent), update / np.linalg.norm(update), atol=1e-6)
    small = np.full(START.shape, 1e-4)  # norm 0.014: under the clipping norm, left as it is
    reply, _ = run(learning, app_moving_by(small), received())
    assert np.allclose(weights(reply) - START, small, atol=1e-6)


def test_statistics_and_evaluation_pass_as_before_under_learning_dp(site: Site) -> None:
    learning = with_learning(site, clipping_norm=1.0, epsilon=1.0, delta=1e-5)
    reply, notes = run(learning, app_moving_by(np.zeros(START.shape)), received(MessageType.QUERY))
    assert not reply.has_error()
    assert reply.content.metric_records["statistics"]["count"] == 20
    assert "noise" not in notes[-1]


def test_a_training_reply_that_is_no_model_fails_and_nothing_leaves(site: Site) -> None:
    learning = with_learning(site, clipping_norm=1.0, epsilon=1.0, delta=1e-5)

    def sneaky(message: Message, context: Context) -> Message:
        stats = MetricRecord({"count": 50, "sum.age": 2000.0})
        return Message(RecordDict({"statistics": stats}), reply_to=message)

    reply, notes = run(learning, sneaky, received())
    assert reply.has_error()
    assert notes[-1]["decision"] == "failed"
    assert "LocalDpMod" in str(notes[-1]["reason"]), notes  # the site's audit says why
    assert str(reply.error.reason).startswith("site-a: the app failed here"), reply.error.reason


@pytest.mark.parametrize(
    ("learning", "reason"),
    [
        ({"clipping_norm": 0, "epsilon": 1, "delta": 1e-5}, "clipping_norm is above 0"),
        ({"clipping_norm": 1, "epsilon": 0, "delta": 1e-5}, "epsilon is above 0"),
        ({"clipping_norm": 1, "epsilon": 1, "delta": 1}, "delta lies between 0 and 1"),
        ({"clipping_norm": 1, "epsilon": 1}, "an object of clipping_norm, epsilon and delta"),
        ([1, 1, 1e-5], "an object of clipping_norm, epsilon and delta"),
        ({"clipping_norm": 1, "epsilon": 1, "delta": 1e-5, "budget": 0}, "budget is above 0"),
        ({"clipping_norm": 1, "epsilon": 1, "delta": 1e-5, "rounds": 3}, "and budget, if"),
    ],
)
def test_a_site_file_with_a_bad_learning_policy_is_refused(
    tmp_path: Path, learning: object, reason: str
) -> None:
    path = tmp_path / "site.json"
    path.write_text(
        json.dumps(
            {
                "site": "site-a",
                "policy": {"k": 10, "learning": learning},
                "api": {"url": "http://x", "project": "p", "key_file": str(tmp_path / "key")},
            }
        )
    )
    with pytest.raises(SiteConfigError, match=reason):
        load(path)


def test_an_app_s_exception_reaches_the_hub_without_its_words(site: Site) -> None:
    def leaky(message: Message, context: Context) -> Message:
        raise ValueError("patient 4711 is 47 and has no age bin")

    reply, notes = run(site, leaky, received())
    assert reply.has_error()
    assert reply.error.code == FAILED
    assert reply.error.reason == (
        "site-a: the app failed here (ValueError); the site's audit trail has the reason"
    )
    assert notes[-1]["decision"] == "failed"
    assert notes[-1]["reason"] == "ValueError: patient 4711 is 47 and has no age bin"


def test_an_error_an_app_replies_reaches_the_hub_without_its_words(site: Site) -> None:
    def erring(message: Message, context: Context) -> Message:
        return Message(Error(code=7, reason="the mean age here is 52.25"), reply_to=message)

    reply, notes = run(site, erring, received())
    assert reply.error.reason == (
        "site-a: the app failed here (error 7); the site's audit trail has the reason"
    )
    assert "52.25" not in str(reply.error.reason)
    assert notes[-1]["reason"] == ("the mean age here is 52.25")


class Ledger:
    """The site's ledger as its api keeps it: spent per person, refused past the budget."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}
        self.asked: list[dict[str, object]] = []

    def __call__(self, what: dict[str, object]) -> dict[str, object]:
        self.asked.append(what)
        who, epsilon, budget = str(what["asked_by"]), float(what["epsilon"]), float(what["budget"])  # type: ignore[arg-type]
        now = self.spent.get(who, 0.0)
        if now + epsilon > budget:
            raise Withheld(f"the learning budget of {who} on p at this site would be passed")
        self.spent[who] = now + epsilon
        return {"asked_by": who, "spent": now + epsilon, "budget": budget}


ROSA = {"giftcloud-asked-by": "rosa", "giftcloud-run": "r-1", "giftcloud-project": "p"}


def test_a_site_s_learning_budget_is_spent_a_round_at_a_time_then_nothing_leaves(
    site: Site,
) -> None:
    budgeted = with_learning(site, clipping_norm=1.0, epsilon=2.0, delta=1e-5, budget=5.0)
    ledger = Ledger()
    update = np.full(START.shape, 0.01)
    replies = [run(budgeted, app_moving_by(update), received(), ROSA, ledger) for _ in range(3)]
    (first, first_notes), (second, _), (third, third_notes) = replies
    assert not first.has_error()
    assert not second.has_error()
    assert first_notes[-1]["budget"] == {"asked_by": "rosa", "spent": 2.0, "budget": 5.0}
    assert ledger.asked[0] == {
        "asked_by": "rosa", "epsilon": 2.0, "budget": 5.0, "hub_run": "r-1", "run": 1,
    }  # fmt: skip
    # a third round would spend 6 of 5: withheld, the reason to the hub, nothing else
    assert third.has_error()
    assert "learning budget of rosa" in str(third.error.reason)
    assert third_notes[-1]["decision"] == "withheld"
    # another person has a budget of their own; queries spend nothing
    other = {**ROSA, "giftcloud-asked-by": "sam"}
    assert not run(budgeted, app_moving_by(update), received(), other, ledger)[0].has_error()
    run(budgeted, app_moving_by(update), received(MessageType.QUERY), ROSA, ledger)
    assert ledger.spent == {"rosa": 4.0, "sam": 2.0}


def test_with_a_budget_a_run_that_does_not_say_who_asked_releases_no_update(site: Site) -> None:
    budgeted = with_learning(site, clipping_norm=1.0, epsilon=2.0, delta=1e-5, budget=5.0)
    ledger = Ledger()
    reply, notes = run(
        budgeted, app_moving_by(np.full(START.shape, 0.01)), received(), None, ledger
    )
    assert reply.has_error()
    assert "keeps a privacy budget per person for learning" in str(reply.error.reason)
    assert ledger.asked == []
    assert notes[-1]["decision"] == "withheld"


def test_without_a_budget_nothing_is_spent(site: Site) -> None:
    ledger = Ledger()
    noisy = with_learning(site, clipping_norm=1.0, epsilon=2.0, delta=1e-5)
    reply, _ = run(noisy, app_moving_by(np.full(START.shape, 0.01)), received(), ROSA, ledger)
    assert not reply.has_error()
    assert ledger.asked == []

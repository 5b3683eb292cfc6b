"""The site's disclosure control on replies: what is released, what is withheld and why."""

from __future__ import annotations

import random

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, MetricRecord, RecordDict
from giftcloud_flower.disclosure import Withheld, cleanse
from giftcloud_flower.site import Site
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def stats(**values: object) -> RecordDict:
    return RecordDict({"statistics": MetricRecord(values)})  # type: ignore[arg-type]


def test_statistics_pass_k_with_the_site_named_and_the_range_widened(site: Site) -> None:
    out = cleanse(
        stats(
            count=20,
            **{"sum.age": 900.0, "min.age": 40.0, "max.age": 60.0, "hist.age": [5, 5, 5, 5]},
        ),
        site,
        random.Random(1),
    )
    released = out.metric_records["statistics"]
    assert released["count"] == 20
    assert released["sum.age"] == 900.0
    assert released["hist.age"] == [5, 5, 5, 5]
    # widened outwards by 10-30 % of the range (20): the exact extremes never leave
    assert 34.0 <= float(released["min.age"]) <= 38.0  # type: ignore[arg-type]
    assert 62.0 <= float(released["max.age"]) <= 66.0  # type: ignore[arg-type]
    assert out.config_records["site"]["name"] == "site-a"


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (stats(count=9, **{"sum.age": 1.0}), "n is 9, below this site's minimum count k = 10"),
        (
            stats(count=20, **{"hist.age": [4, 4, 4, 4, 4]}),
            "in 5 bins for n = 20: this site allows at most 4",
        ),
        (stats(count=20, **{"hist.age": [4, 4, 4, 4]}), "holds 16 of n = 20"),
        (stats(count=20, **{"values.age": [1.0]}), "only count, sum, min, max and hist"),
        (stats(count=20, **{"hist.age": [25, -5]}), "a bin that is not a count"),
        (stats(**{"sum.age": 1.0}), "without a count"),
        (
            RecordDict({"rows": ConfigRecord({"uid": "1.2.3"})}),
            "releases statistics or a model update",
        ),
        (
            RecordDict(
                {"arrays": ArrayRecord([np.zeros(3)]), "metrics": MetricRecord({"num-examples": 3})}
            ),
            "num-examples is 3, below",
        ),
        (
            RecordDict(
                {
                    "arrays": ArrayRecord([np.zeros(3)]),
                    "metrics": MetricRecord({"num-examples": 30, "grad-norm": 1.0}),
                }
            ),
            "only num-examples, loss",
        ),
        (
            RecordDict({"arrays": ArrayRecord([np.zeros(3)])}),
            "an ArrayRecord 'arrays' and a MetricRecord",
        ),
    ],
)
def test_withheld_with_the_reason(site: Site, reply: RecordDict, reason: str) -> None:
    with pytest.raises(Withheld, match=reason.replace("(", r"\(")):
        cleanse(reply, site, random.Random(1))


def test_a_model_update_of_k_or_more_is_released_whole(site: Site) -> None:
    w = np.array([0.5, -1.0, 2.0])
    out = cleanse(
        RecordDict(
            {"arrays": ArrayRecord([w]), "metrics": MetricRecord({"num-examples": 10, "loss": 0.3})}
        ),
        site,
        random.Random(1),
    )
    assert np.array_equal(out.array_records["arrays"].to_numpy_ndarrays()[0], w)
    assert out.metric_records["metrics"]["num-examples"] == 10


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    count=st.integers(0, 60),
    bins=st.lists(st.integers(0, 30), min_size=1, max_size=12),
    k=st.integers(5, 20),
)
def test_nothing_released_derives_from_fewer_than_k(
    site: Site, count: int, bins: list[int], k: int
) -> None:
    """Property: whatever an app replies, a released statistic covers at least k series
    and its histogram adds up to them in at most the allowed number of bins."""
    from dataclasses import replace

    strict = replace(site, policy=replace(site.policy, k=k))
    try:
        out = cleanse(stats(count=count, **{"hist.x": bins}), strict, random.Random(0))
    except Withheld:
        return
    released = out.metric_records["statistics"]
    assert released["count"] >= k  # type: ignore[operator]
    assert sum(released["hist.x"]) == released["count"]  # type: ignore[arg-type]
    assert len(released["hist.x"]) <= 0.2 * count  # type: ignore[arg-type]

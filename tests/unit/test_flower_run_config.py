"""A Flower run asked at the hub: its configuration must be what the runner's app takes —
every key one the app declares (Flower itself would drop an unknown key silently), each of
its default's type, none of the keys giftcloud sets — or a 400 with the reason."""

import pytest
from giftcloud_api.flowerruns.schemas import CatalogueApp, FlowerRunIn
from giftcloud_api.flowerruns.service import checked
from giftcloud_core.errors import BadRequest

APPS = [
    CatalogueApp(
        name="statistics",
        config={"features": "age", "bins": 4, "timeout": 120.0, "strict": False},
    )
]


def test_a_run_the_app_takes_keeps_its_configuration() -> None:
    config = {"features": "age,intensity", "bins": 6, "timeout": 30, "strict": True}
    assert checked(FlowerRunIn(app="statistics", config=config), APPS) == config
    assert checked(FlowerRunIn(app="statistics"), APPS) == {}


@pytest.mark.parametrize(
    ("app", "config", "reason"),
    [
        ("fedavg", {}, "no Flower app 'fedavg' at this hub; its runner offers: statistics"),
        ("statistics", {"bin": 4}, "statistics takes no 'bin'; it takes: bins, features, strict"),
        ("statistics", {"bins": 4.5}, "'bins' is a whole number (default 4), not 4.5"),
        ("statistics", {"bins": True}, "'bins' is a whole number (default 4), not True"),
        ("statistics", {"features": 3}, "'features' is text (default 'age'), not 3"),
        ("statistics", {"strict": 1}, "'strict' is true or false (default False), not 1"),
        ("statistics", {"timeout": "soon"}, "'timeout' is a number (default 120.0), not 'soon'"),
        (
            "statistics",
            {"giftcloud-asked-by": "someone else"},
            "'giftcloud-asked-by': keys starting 'giftcloud-' are set by giftcloud",
        ),
    ],
)
def test_anything_else_is_refused_saying_why(
    app: str, config: dict[str, object], reason: str
) -> None:
    with pytest.raises(BadRequest) as refused:
        checked(FlowerRunIn.model_validate({"app": app, "config": config}), APPS)
    assert reason in refused.value.message


def test_with_no_runner_yet_the_answer_says_so() -> None:
    with pytest.raises(BadRequest, match=r"nothing yet \(is the runner running\?\)"):
        checked(FlowerRunIn(app="statistics"), [])

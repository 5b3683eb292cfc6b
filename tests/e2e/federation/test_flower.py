"""Federated statistics and learning on Flower across the hub and both sites: a SuperLink
beside the hub (TLS, SuperNode authentication on), a SuperNode per site dialling out with
its registered key, and the site's gate in front of it — only apps whose digest the site
approved run, and every reply passes the site's disclosure control.

The ground truth is the tests' own cohort: the statistics pooled over the sites and the
two FedAvg rounds must equal what is computed centrally on the union."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from support.deployment import Deployment
from support.federated import COHORTS
from support.flower import (
    BIN,
    UNION,
    Hub,
    decisions,
    env,
    node_key,
    supernode_command,
)
from support.infra import Nginx, free_port

pytestmark = pytest.mark.timeout(900)

CT = 'modality="CT"'


def _audit(flower: dict[str, Any], site: str) -> list[dict[str, Any]]:
    return decisions(flower["sites"][site])


def test_statistics_pooled_over_the_sites_equal_the_union(flower: dict[str, Any]) -> None:
    hub: Hub = flower["hub"]
    result = hub.run(flower["statistics"], CT)
    assert result["refused"] == {}, result
    assert set(result["sites"]) == {"site-a", "site-b"}
    pooled = result["pooled"]
    ages = np.array([age for *_, age, _ in UNION], dtype=float)
    intensity = np.array([value for *_, value in UNION], dtype=float)
    assert pooled["count"] == len(UNION) == 58
    assert pooled["mean.age"] == pytest.approx(ages.mean())
    assert pooled["mean.intensity"] == pytest.approx(intensity.mean())
    for feature, values in (("age", ages), ("intensity", intensity)):
        edges = np.array(pooled[f"edges.{feature}"])
        assert len(edges) == 5  # 4 bins: at most 20 % of 23, site-b's n
        # the range was widened at each site: the true extremes lie strictly inside
        assert edges[0] < values.min() and edges[-1] > values.max()
        central, _ = np.histogram(values, bins=edges)
        assert pooled[f"hist.{feature}"] == central.tolist()
    for site in COHORTS:
        assert result["sites"][site]["count"] == sum(1 for u in UNION if u[0] == site)
    # the site keeps the raw reply beside the released one; the raw minimum stays there
    released = [a for a in _audit(flower, "site-a") if a["decision"] == "released"]
    assert any(a["raw"]["statistics"].get("min.age") == 40 for a in released)
    assert all(a["released"]["statistics"].get("min.age", 0) < 40 for a in released)


def test_a_cohort_below_k_is_withheld_by_the_site_with_the_rule(flower: dict[str, Any]) -> None:
    hub: Hub = flower["hub"]
    result = hub.run(flower["statistics"], 'modality="MR"')
    # site-a has 4 MR series: it releases nothing (site-b's MR depend on the job tests)
    assert "site-a" not in result["sites"]
    reasons = list(result["refused"].values())
    assert any("site-a: n is 4, below this site's minimum count k = 10" in r for r in reasons)
    withheld = [a for a in _audit(flower, "site-a") if a["decision"] == "withheld"]
    assert withheld[-1]["raw"]["statistics"]["count"] == 4


def test_the_hub_cannot_loosen_a_sites_rule_by_asking_for_finer_bins(
    flower: dict[str, Any],
) -> None:
    hub: Hub = flower["hub"]
    result = hub.run(flower["statistics"], CT, "bins=8")
    assert result["sites"] == {}
    reasons = list(result["refused"].values())
    assert any(
        "site-a: a histogram of age in 8 bins for n = 35: this site allows at most 7" in r
        for r in reasons
    ), reasons
    assert any("site-b: a histogram of age in 8 bins for n = 23" in r for r in reasons), reasons


def test_fedavg_over_two_rounds_equals_training_on_the_union(flower: dict[str, Any]) -> None:
    hub: Hub = flower["hub"]
    result = hub.run(flower["fedavg"], CT)
    w = _central_weights()
    assert np.allclose(result["weights"], w, atol=1e-9), (result["weights"], w)
    # each round's loss, pooled by Flower weighted by the sites' series: training helped
    assert result["rounds"]["2"]["loss"] < result["rounds"]["1"]["loss"]


def _central_weights(rounds: int = 2) -> np.ndarray:
    """FedAvg's weights computed centrally on the union (the app's defaults: one
    full-batch step a round, lr 0.5)."""
    x = np.array([[(value - 400) / 300, (age - 50) / 10, 1.0] for *_, age, value in UNION])
    y = np.array([1.0 if sex == "M" else 0.0 for _, _, sex, _, _ in UNION])
    w = np.zeros(3)
    for _ in range(rounds):
        p = 1 / (1 + np.exp(-x @ w))
        w = w - 0.5 * (x.T @ (p - y)) / len(y)
    return w


def test_fedavg_under_a_site_s_learning_dp_sends_only_clipped_noised_updates(
    flower: dict[str, Any],
) -> None:
    """Each site's admin sets local DP on learning in the site's own file: every update is
    clipped to its norm and noised by Flower's LocalDpMod in the site's gate, whatever the
    app does; the exact loss stays at the site; the audit names the mechanism."""
    hub: Hub = flower["hub"]
    files = {name: flower["folder"] / name / "site.json" for name in flower["sites"]}
    kept = {name: path.read_text() for name, path in files.items()}
    clip = 0.01  # far below a round's step on the union (checked), with noise of std ~5e-8
    learning = {"clipping_norm": clip, "epsilon": 1e6, "delta": 1e-5}
    try:
        for name, path in files.items():
            settings = json.loads(kept[name])
            settings["policy"]["learning"] = learning
            path.write_text(json.dumps(settings))
        result = hub.run(flower["fedavg"], CT)
    finally:
        for name, path in files.items():
            path.write_text(kept[name])
    central = _central_weights()
    assert np.linalg.norm(central) > 20 * clip, central  # the clipping must show
    weights = np.array(result["weights"])
    # two rounds, each the weighted mean of two updates clipped to 0.01: at most 0.02 away
    assert np.linalg.norm(weights) <= 2 * clip + 1e-5, weights
    assert np.linalg.norm(weights) > clip, weights  # and the updates did move it
    # the direction is still the central one's (the clipped step points the same way)
    cosine = weights @ central / np.linalg.norm(weights) / np.linalg.norm(central)
    assert cosine > 0.9, (weights, central)
    assert all("loss" not in metrics for metrics in result["rounds"].values()), result
    released = [a for a in _audit(flower, "site-a") if a["decision"] == "released"]
    noted = released[-1]["noise"]
    assert noted["mechanism"] == "Gaussian, Flower's LocalDpMod" and noted["epsilon"] == 1e6
    assert noted["clipping_norm"] == clip and released[-1]["type"] == "train"


def test_an_app_the_sites_did_not_approve_is_refused_with_the_reason(
    flower: dict[str, Any],
) -> None:
    hub: Hub = flower["hub"]
    changed, digest = flower["changed"]
    result = hub.run(changed)
    assert result["sites"] == {}
    reasons = list(result["refused"].values())
    assert len(reasons) == 2
    for site in ("site-a", "site-b"):
        assert any(
            f"{site} has not approved the app with digest sha256:{digest}" in r for r in reasons
        )
        refused = [a for a in _audit(flower, site) if a["decision"] == "refused"]
        assert digest in refused[-1]["reason"]


def test_an_approval_revoked_at_a_site_stops_the_next_run_there_at_once(
    flower: dict[str, Any],
) -> None:
    hub: Hub = flower["hub"]
    site_a: Deployment = flower["sites"]["site-a"]
    [approval] = [
        a
        for a in httpx.get(
            f"{site_a.url}/api/federation/flower/apps", headers=site_a.token()
        ).json()
        if a["name"] == "statistics"
    ]
    gone = httpx.delete(
        f"{site_a.url}/api/federation/flower/apps/{approval['digest']}", headers=site_a.token()
    )
    assert gone.status_code == 204, gone.text
    try:
        result = hub.run(flower["statistics"], CT)
        assert set(result["sites"]) == {"site-b"}  # site-b still approves it
        [reason] = result["refused"].values()
        assert f"site-a has not approved the app with digest sha256:{approval['digest']}" in reason
        refused = [a for a in _audit(flower, "site-a") if a["decision"] == "refused"]
        assert refused[-1]["digest"] == approval["digest"]
        assert refused[-1]["outcome"] == "denied" and refused[-1]["actor"]
    finally:
        again = httpx.put(
            f"{site_a.url}/api/federation/flower/apps/{approval['digest']}",
            json={"name": "statistics"},
            headers=site_a.token(),
        )
        assert again.status_code == 200, again.text


def test_a_supernode_whose_key_the_hub_never_registered_is_not_let_in(
    flower: dict[str, Any],
) -> None:
    hub: Hub = flower["hub"]
    folder: Path = flower["folder"] / "stranger"
    folder.mkdir()
    private, _ = node_key(folder, "node")
    log = folder / "supernode.log"
    with log.open("wb") as out:
        stranger = subprocess.Popen(
            supernode_command(hub, private, free_port(), "--max-retries", "2"),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env(folder),
        )
        try:
            code = stranger.wait(timeout=120)
        finally:
            stranger.kill()
    assert code != 0, log.read_text()
    assert "Failed to activate SuperNode" in log.read_text()  # refused by the SuperLink
    listed = hub.flwr("supernode", "ls", "hub", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)["nodes"]) == 2, listed.stdout


def test_through_the_hubs_gateway_a_site_reaches_the_fleet_api_and_nothing_else(
    flower: dict[str, Any],
) -> None:
    """site-a's SuperNode knows only the gateway and took part in every run above; what
    the gateway does not pass on is the SuperLink's Control API (who runs what, which keys
    are registered)."""
    hub: Hub = flower["hub"]
    front: Nginx = flower["gateway"]

    def answer(*args: str | Path) -> dict[str, Any]:
        done = hub.flwr(*args, "--format", "json")
        found: dict[str, Any] = json.loads(done.stdout)
        return found

    assert answer("supernode", "ls", "hub")["success"] is True
    listed = answer("supernode", "ls", "gateway")
    assert listed["success"] is False and listed["error-message"].endswith("Not Found")
    folder: Path = flower["folder"] / "outsider"
    folder.mkdir()
    _, public = node_key(folder, "node")
    registered = answer("supernode", "register", public, "gateway")
    assert registered["success"] is False and registered["error-message"].endswith("Not Found")
    assert len(answer("supernode", "ls", "hub")["nodes"]) == 2
    # the same request: the SuperLink answers it, the gateway does not pass it on
    for path in ("/v1/control/list-runs", "/v1/runtime/acquire-task"):
        direct = httpx.post(f"https://127.0.0.1:{hub.port}{path}", verify=str(hub.ca))
        through = httpx.post(f"{front.url}{path}", verify=str(hub.ca))
        assert direct.status_code != 404, (path, direct.text)
        assert through.status_code == 404, (path, through.text)
    fleet = httpx.post(f"{front.url}/v1/fleet/activate-node", verify=str(hub.ca))
    assert fleet.status_code != 404 and "giftcloud" not in fleet.text.lower(), fleet.text


def test_each_sites_supernode_and_gate_answer_health(flower: dict[str, Any]) -> None:
    for site, processes in flower["health"].items():
        for name, address in processes.items():
            probed = subprocess.run(
                [BIN / "giftcloud-flower-health", address], capture_output=True, text=True
            )
            assert probed.returncode == 0, f"{site} {name}: {probed.stderr}"
    nothing = subprocess.run(
        [BIN / "giftcloud-flower-health", f"127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
    )
    assert nothing.returncode == 1 and "did not answer" in nothing.stderr

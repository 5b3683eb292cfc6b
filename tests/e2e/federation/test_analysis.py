"""Analysis jobs, end to end, on the hub and two sites of this package: a site runs only an
algorithm its admin approved (by the digest of its code), over the series the job's
criteria choose there; an aggregate whose every count passes the site's k leaves at once,
anything else waits for the site's data steward, who releases or withholds it.

Site A's CT series: 32 of mean 100 (F, O) and 3 of mean 700 (M); site B's: 12 and 11. An
intensity histogram of CT series in two bins (0-500, 500-1000) is released at once by B and
held by A (its 3 is below k = 10) until A's steward releases it; the result at the hub is
the histogram computed centrally over both sites' files."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from support.browser import Tab, launched
from support.cli import User, one_line
from support.deployment import Deployment
from support.federated import BY_SEX, COHORTS, INTENSITY, PROJECT, ROSA, cohort
from support.federated import sites as hub_sites
from support.infra import wait_for

Federation = tuple[Deployment, dict[str, Deployment]]
STEWARD = ("sam", "sam releases what leaves site a")
STEWARD_B = ("tess", "tess withholds at site b")
HISTOGRAM = {
    "algorithm": "intensity-histogram",
    "criteria": [{"attribute": "modality", "op": "eq", "value": "CT"}],
    "parameters": {"low": 0, "high": 1000, "bins": 2},
}
SETTLED = ("done", "withheld", "refused", "failed", "cancelled", "awaiting_release", "waiting")


@pytest.fixture(scope="module")
def stewards(federation: Federation) -> None:
    """Each site's data steward: sam at site a, tess at site b."""
    _, sites = federation
    for site, who in ((sites["site-a"], STEWARD), (sites["site-b"], STEWARD_B)):
        site.add_person(*who, PROJECT, "member", site_roles=("steward",))


def _submit(hub: Deployment, body: dict[str, Any]) -> dict[str, Any]:
    made = httpx.post(
        f"{hub.url}/api/projects/{PROJECT}/federation/jobs", json=body, headers=hub.token(*ROSA)
    )
    assert made.status_code == 201, made.text
    found: dict[str, Any] = made.json()
    return found


def _settled(hub: Deployment, job: str, timeout: float = 120) -> dict[str, Any]:
    url = f"{hub.url}/api/projects/{PROJECT}/federation/jobs/{job}"
    deadline = time.monotonic() + timeout
    while True:
        found: dict[str, Any] = httpx.get(url, headers=hub.token(*ROSA)).json()
        if all(p["state"] in SETTLED for p in found["parts"]) or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def _parts(found: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["site"]: p for p in found["parts"]}


def _approve(site: Deployment, name: str) -> None:
    listed = httpx.get(f"{site.url}/api/federation/algorithms", headers=site.token()).json()
    digest = next(a["digest"] for a in listed if a["name"] == name)
    approved = httpx.put(
        f"{site.url}/api/federation/algorithms/{name}",
        json={"digest": digest},
        headers=site.token(),
    )
    assert approved.status_code == 200 and approved.json()["approved"] == digest, approved.text


def _central() -> dict[str, int]:
    """The histogram over the union of both sites' CT series, computed here."""
    counts = {"0 to 500": 0, "500 to 1000": 0}
    for held in COHORTS.values():
        for (modality, sex), n in held.items():
            if modality == "CT":
                counts["0 to 500" if INTENSITY[sex] < 500 else "500 to 1000"] += n
    return counts


def _cells(output: dict[str, Any]) -> dict[str, int]:
    return {cell["key"][0]: cell["count"] for cell in output["cells"]}


def test_only_approved_code_runs_and_outputs_leave_by_the_site_s_rules(
    federation: Federation, stewards: None
) -> None:
    hub, sites = federation
    # nobody approved anything yet: both sites refuse, saying why
    job = _settled(hub, _submit(hub, HISTOGRAM)["id"])
    for part in job["parts"]:
        assert part["state"] == "refused", part
        assert part["reason"] == "the algorithm intensity-histogram is not approved at this site"

    # an admin approves the code they reviewed: the digest of the code installed now
    wrong = httpx.put(
        f"{sites['site-a'].url}/api/federation/algorithms/intensity-histogram",
        json={"digest": "0" * 64},
        headers=sites["site-a"].token(),
    )
    assert wrong.status_code == 409 and "review the code installed now" in wrong.text
    for site in sites.values():
        _approve(site, "intensity-histogram")
    wait_for(
        lambda: all(
            "intensity-histogram" in s["policy"].get("algorithms", {}) for s in hub_sites(hub)
        ),
        timeout=30,
        what="the hub told of the approvals",
    )
    # asking for other code than was approved is refused
    other = _settled(hub, _submit(hub, {**HISTOGRAM, "digest": "1" * 64})["id"])
    assert all("this site approved" in p["reason"] for p in other["parts"]), other

    # the refused job, tried again: B releases at once, A holds its output for the steward
    retried = httpx.post(
        f"{hub.url}/api/projects/{PROJECT}/federation/jobs/{job['id']}/retry",
        headers=hub.token(*ROSA),
    )
    assert retried.status_code == 200, retried.text
    parts = _parts(_settled(hub, job["id"]))
    assert parts["site-b"]["state"] == "done", parts["site-b"]
    assert parts["site-b"]["attempt"] == 2
    assert _cells(parts["site-b"]["output"]) == {"0 to 500": 12, "500 to 1000": 11}
    assert parts["site-a"]["state"] == "awaiting_release", parts["site-a"]
    assert "below k = 10" in parts["site-a"]["reason"] and parts["site-a"]["output"] == {}

    site_a = sites["site-a"]
    # the site's admin is not its steward
    refused = httpx.get(f"{site_a.url}/api/federation/jobs", headers=site_a.token())
    assert refused.status_code == 403 and "steward" in refused.text
    held = httpx.get(
        f"{site_a.url}/api/federation/jobs",
        params={"state": "awaiting_release"},
        headers=site_a.token(*STEWARD),
    ).json()
    [mine] = [j for j in held if j["id"] == job["id"]]
    assert _cells(mine["output"]) == {"0 to 500": 32, "500 to 1000": 3}
    assert mine["series"] == 35 and mine["submitted_by"] == "rosa"
    released = httpx.post(
        f"{site_a.url}/api/federation/jobs/{job['id']}/decision",
        json={"release": True, "reason": "a bin of 3 series of mean intensity reveals no one"},
        headers=site_a.token(*STEWARD),
    )
    assert released.status_code == 200 and released.json()["state"] == "done", released.text
    wait_for(
        lambda: _parts(_settled(hub, job["id"]))["site-a"]["state"] == "done",
        timeout=30,
        what="site a's release at the hub",
    )
    parts = _parts(_settled(hub, job["id"]))
    pooled = {
        key: sum(_cells(p["output"]).get(key, 0) for p in parts.values()) for key in _central()
    }
    assert pooled == _central() == {"0 to 500": 44, "500 to 1000": 14}
    # decided once: a second decision is refused
    again = httpx.post(
        f"{site_a.url}/api/federation/jobs/{job['id']}/decision",
        json={"release": False},
        headers=site_a.token(*STEWARD),
    )
    assert again.status_code == 409

    # the site's audit trail holds the job, who asked and the rule; the hub's the release
    trail = httpx.get(
        f"{site_a.url}/api/audit", params={"action": "api.federation.job"}, headers=site_a.token()
    )
    assert trail.status_code == 200 and "rosa (at the hub)" in trail.text, trail.text[:500]
    runs = [r for r in trail.json() if r["action"] == "api.federation.job.run"]
    assert any("held for the steward: a count below k = 10" in r["detail"] for r in runs), runs


def test_a_listing_waits_for_the_steward_who_may_withhold_it(
    federation: Federation, stewards: None
) -> None:
    hub, sites = federation
    site_b = sites["site-b"]
    _approve(site_b, "series-sizes")
    job = _submit(hub, {"algorithm": "series-sizes", "sites": ["site-b"]})
    part = _parts(_settled(hub, job["id"]))["site-b"]
    assert part["state"] == "awaiting_release", part
    assert part["reason"] == "held for the steward: not an aggregate of counts"
    steward = site_b.token(*STEWARD_B)
    seen = httpx.get(f"{site_b.url}/api/federation/jobs/{job['id']}", headers=steward).json()
    assert seen["output"]["kind"] == "listing" and len(seen["output"]["series"]) == 23
    withheld = httpx.post(
        f"{site_b.url}/api/federation/jobs/{job['id']}/decision",
        json={"release": False, "reason": "one row per series"},
        headers=steward,
    )
    assert withheld.status_code == 200, withheld.text
    wait_for(
        lambda: _parts(_settled(hub, job["id"]))["site-b"]["state"] == "withheld",
        timeout=30,
        what="the steward's decision at the hub",
    )
    part = _parts(_settled(hub, job["id"]))["site-b"]
    assert part["reason"] == "withheld by the steward tess: one row per series"
    assert part["output"] == {}


@pytest.mark.parametrize(
    "bad", [{"algorithm": "Not A Name"}, {"algorithm": "x", "sites": ["nowhere"]}]
)
def test_a_job_the_hub_cannot_give_is_refused_at_once(
    federation: Federation, bad: dict[str, Any]
) -> None:
    hub, _ = federation
    answer = httpx.post(
        f"{hub.url}/api/projects/{PROJECT}/federation/jobs", json=bad, headers=hub.token(*ROSA)
    )
    assert answer.status_code in (400, 422), answer.text


def test_the_commands_approve_run_and_review(federation: Federation, tmp_path: Path) -> None:
    hub, sites = federation
    site_a = sites["site-a"]
    site_a.add_person("una", "una reviews at site a", PROJECT, "member", site_roles=("steward",))

    def person(name: str, password: str, url: str) -> tuple[User, dict[str, str]]:
        user = User(tmp_path / name)
        env = {"GIFTCLOUD_USERNAME": name, "GIFTCLOUD_PASSWORD": password, "GIFTCLOUD_URL": url}
        user.run("login", env=env)
        return user, env

    admin, admin_env = person("admin", "admin-test-password", site_a.url)
    listed = admin.run("federate", "algorithms", env=admin_env).stdout
    row = next(line.split() for line in listed.splitlines() if line.startswith("series-sizes"))
    assert row[2] == "no", listed
    approved = admin.run(
        "federate", "algorithms", "--approve", f"series-sizes={row[1]}", env=admin_env
    ).stdout
    assert (
        next(line for line in approved.splitlines() if line.startswith("series-sizes")).split()[2]
        == "yes"
    )

    rosa, rosa_env = person(*ROSA, hub.url)
    bad = rosa.run(
        "federate", "job", PROJECT, "series-sizes", "--param", "=1", env=rosa_env, code=2
    )
    assert one_line(bad).endswith("--param '=1': write NAME=VALUE (the value as JSON or text)")
    said = rosa.run(
        "federate",
        "job",
        PROJECT,
        "series-sizes",
        "--where",
        "modality=MR",
        "--site",
        "site-a",
        env=rosa_env,
    ).stdout
    job = said.split()[1]
    assert "site-a  awaiting_release" in said and "not an aggregate" in said, said

    una, una_env = person("una", "una reviews at site a", site_a.url)
    unsaid = una.run("federate", "review", "--withhold", "no job named", env=una_env, code=2)
    assert one_line(unsaid).endswith("--release and --withhold take the JOB they decide")
    waiting = una.run("federate", "review", env=una_env).stdout
    assert job in waiting and "rosa" in waiting
    decided = una.run(
        "federate", "review", job, "--withhold", "too fine a listing", env=una_env
    ).stdout
    assert decided.strip() == (
        f"job {job}: withheld (withheld by the steward una: too fine a listing)"
    )
    wait_for(
        lambda: "withheld" in rosa.run("federate", "jobs", PROJECT, job, env=rosa_env).stdout,
        timeout=30,
        what="the steward's decision at the hub",
    )


def test_a_standing_job_runs_on_each_new_series_under_the_same_rules(
    federation: Federation, stewards: None
) -> None:
    hub, sites = federation
    site_b = sites["site-b"]
    _approve(site_b, "intensity-histogram")
    job = _submit(
        hub,
        {
            **HISTOGRAM,
            "criteria": [{"attribute": "modality", "op": "eq", "value": "MR"}],
            "sites": ["site-b"],
            "standing": True,
        },
    )["id"]
    # site b has no MR yet: the job waits
    part = _parts(_settled(hub, job))["site-b"]
    assert (part["state"], part["run"]) == ("waiting", 1), part

    def archive(counts: dict[tuple[str, str], int], tag: str) -> None:
        headers = site_b.token()
        before = site_b.instance_count(PROJECT, headers)
        files = cohort(f"{tag}", counts)
        stored = site_b.stow(PROJECT, files, headers)
        assert stored.status_code == 200, stored.text
        wait_for(
            lambda: site_b.instance_count(PROJECT, headers) == before + len(files),
            timeout=120,
            what=f"{tag} archived at site b",
        )

    def part_is(state: str, run: int) -> dict[str, Any] | None:
        found = _parts(_settled(hub, job))["site-b"]
        return found if (found["state"], found["run"]) == (state, run) else None

    # 12 MR series arrive: run 1 over them, an aggregate that passes k, released at once
    archive({("MR", "F"): 12}, "b2")
    wait_for(lambda: part_is("done", 1), timeout=90, what="the standing job's first run")
    part = _parts(_settled(hub, job))["site-b"]
    assert _cells(part["output"]) == {"0 to 500": 12}
    # 3 more: run 2 over those 3 alone, below k, so held for the steward
    archive({("MR", "M"): 3}, "b3")
    wait_for(lambda: part_is("awaiting_release", 2), timeout=90, what="the second run")
    part = _parts(_settled(hub, job))["site-b"]
    assert [r["run"] for r in part["released"]] == [1] and "below k = 10" in part["reason"]
    held = httpx.get(
        f"{site_b.url}/api/federation/jobs/{job}", headers=site_b.token(*STEWARD_B)
    ).json()
    assert held["series"] == 3 and _cells(held["output"]) == {"500 to 1000": 3}

    # cancelled at the hub: it stops at the site, and runs no more
    cancelled = httpx.post(
        f"{hub.url}/api/projects/{PROJECT}/federation/jobs/{job}/cancel",
        headers=hub.token(*ROSA),
    )
    assert cancelled.status_code == 200, cancelled.text
    wait_for(lambda: part_is("cancelled", 2), timeout=30, what="the cancellation at site b")
    archive({("MR", "O"): 1}, "b4")
    time.sleep(3)  # three of the site's looks for new series
    assert part_is("cancelled", 2)


def test_a_job_runs_on_what_each_site_counted_for_a_question(
    federation: Federation, stewards: None
) -> None:
    hub, sites = federation
    for site in sites.values():
        _approve(site, "intensity-histogram")
    headers = hub.token(*ROSA)
    base = f"{hub.url}/api/projects/{PROJECT}/federation"
    asked = httpx.post(f"{base}/counts", json=BY_SEX, headers=headers).json()
    wait_for(
        lambda: all(
            p["state"] == "answered"
            for p in httpx.get(f"{base}/counts/{asked['id']}", headers=headers).json()["parts"]
        ),
        timeout=60,
        what="both sites' counts",
    )
    # the cohort is the question's id: each site knows which series it counted
    job = _submit(hub, {**HISTOGRAM, "criteria": [], "question": asked["id"]})
    parts = _parts(_settled(hub, job["id"]))
    assert _cells(parts["site-b"]["output"]) == {"0 to 500": 12, "500 to 1000": 11}
    assert parts["site-a"]["state"] == "awaiting_release"
    mine = httpx.get(
        f"{sites['site-a'].url}/api/federation/jobs/{job['id']}",
        headers=sites["site-a"].token(*STEWARD),
    ).json()
    assert mine["series"] == 35 and mine["question"] == asked["id"]

    unknown = httpx.post(
        f"{base}/jobs", json={**HISTOGRAM, "criteria": [], "question": "nope"}, headers=headers
    )
    assert unknown.status_code == 404 and "no question nope" in unknown.text
    both = httpx.post(f"{base}/jobs", json={**HISTOGRAM, "question": asked["id"]}, headers=headers)
    assert both.status_code == 422 and "criteria or by a question, not both" in both.text


def test_a_researcher_runs_a_job_on_the_page(federation: Federation, stewards: None) -> None:
    """The jobs page in a real browser (axe clean): what each site approved, a job built
    from the allow-listed criteria, each site's state and released output as they come."""
    hub, sites = federation
    for site in sites.values():
        _approve(site, "intensity-histogram")
    with launched() as browser:
        tab = Tab(browser, hub.url)
        try:
            tab.sign_in(*ROSA)
            tab.go(f"/projects/{PROJECT}/federation")
            tab.page.click("text=Run a job at the sites")
            tab.page.wait_for_selector("[data-jobs][data-loaded=true]")
            tab.page.wait_for_selector(
                "#algorithm option[value=intensity-histogram]", state="attached"
            )
            assert "intensity-histogram" in tab.page.inner_text("[data-approved]")
            assert tab.check("jobs-at-the-sites") == []
            tab.page.select_option("#algorithm", "intensity-histogram")
            tab.page.select_option("#w0-a", "modality")
            tab.page.fill("#w0-v", "CT")
            tab.page.fill("#parameters", "{not json")
            tab.page.click("button:has-text('Run')")
            tab.page.wait_for_selector("text=Parameters: write a JSON object")
            tab.page.fill("#parameters", '{"low": 0, "high": 1000, "bins": 2}')
            tab.page.click("button:has-text('Run')")
            tab.page.wait_for_selector("text=Every site has run it", timeout=120000)
            shown = tab.page.locator("[data-job]").first.inner_text()
            assert "site-a\tawaiting release\t1\t1\theld for the steward" in shown, shown
            assert "site-b\tdone\t1\t1\treleased: an aggregate" in shown, shown
            assert "site-b, run 1:" in shown and '"500 to 1000"' in shown, shown
            assert tab.errors == [], tab.errors
        finally:
            tab.close()


def test_a_site_s_admin_and_steward_decide_on_the_site_page(
    federation: Federation, stewards: None
) -> None:
    """The site's own page in a real browser (axe clean): its admin revokes and approves an
    algorithm and a Flower app and saves the policy; its steward releases a held output,
    which the hub then shows; a member without either role is refused the page."""
    hub, sites = federation
    site_a = sites["site-a"]
    _approve(site_a, "series-sizes")
    admin = site_a.token()

    def algorithm(name: str) -> dict[str, Any]:
        listed = httpx.get(f"{site_a.url}/api/federation/algorithms", headers=admin).json()
        return next(a for a in listed if a["name"] == name)  # type: ignore[no-any-return]

    def flower_apps() -> list[str]:
        listed = httpx.get(f"{site_a.url}/api/federation/flower/apps", headers=admin).json()
        return [app["digest"] for app in listed]

    digest = "ab" * 32
    with launched() as browser:
        tab = Tab(browser, site_a.url)
        try:
            tab.sign_in("admin", "admin-test-password")
            tab.page.click("nav >> text=Site federation")
            tab.page.wait_for_selector("[data-site-federation][data-loaded=true]")
            assert tab.page.input_value("#p-k") == "10" and tab.page.is_checked("#p-enabled")
            assert tab.page.locator("[data-outputs]").count() == 0  # the admin is no steward
            assert tab.check("site-federation-admin") == []
            row = "[data-algorithm=series-sizes]"
            assert "yes, by admin" in tab.page.inner_text(row)
            tab.page.click(f"{row} >> button:has-text('Revoke')")
            tab.page.wait_for_selector("text=Revoked series-sizes")
            assert algorithm("series-sizes")["approved"] == ""
            tab.page.click(f"{row} >> button:has-text('Approve')")
            tab.page.wait_for_selector("text=Approved series-sizes")
            found = algorithm("series-sizes")
            assert found["approved"] == found["digest"] and found["approved_by"] == "admin"

            tab.page.fill("#f-name", "statistics")
            tab.page.fill("#f-digest", digest)
            tab.page.click("button:has-text('Approve the app')")
            tab.page.wait_for_selector(f"[data-flower-app='{digest}']")
            assert digest in flower_apps()
            tab.page.click(f"[data-flower-app='{digest}'] >> button:has-text('Revoke')")
            tab.page.wait_for_selector("text=Revoked statistics")
            assert digest not in flower_apps()

            tab.page.click("button:has-text('Save the policy')")
            tab.page.wait_for_selector("text=Saved the policy")
            now = httpx.get(f"{site_a.url}/api/federation/policy", headers=admin).json()
            assert (now["k"], now["enabled"], now["updated_by"]) == (10, True, "admin")
            assert tab.errors == [], tab.errors
        finally:
            tab.close()

        job = _submit(
            hub,
            {
                "algorithm": "series-sizes",
                "criteria": [{"attribute": "modality", "op": "eq", "value": "MR"}],
                "sites": ["site-a"],
            },
        )["id"]
        assert _parts(_settled(hub, job))["site-a"]["state"] == "awaiting_release"
        tab = Tab(browser, site_a.url)
        try:
            tab.sign_in(*STEWARD)
            tab.go("/site/federation")
            tab.page.wait_for_selector("[data-site-federation][data-loaded=true]")
            assert tab.page.locator("[data-policy]").count() == 0  # the steward is no admin
            card = f"[data-output='{job}']"
            shown = tab.page.inner_text(card)
            assert "series-sizes on" in shown and "asked by rosa" in shown, shown
            assert '"kind": "listing"' in shown, shown
            assert tab.check("site-federation-steward") == []
            tab.page.click(f"{card} >> button:has-text('Release')")
            tab.page.wait_for_selector(f"text=Released job {job}'s output to the hub.")
            assert tab.page.locator(card).count() == 0
            assert tab.errors == [], tab.errors
        finally:
            tab.close()
        wait_for(
            lambda: _parts(_settled(hub, job))["site-a"]["state"] == "done",
            timeout=30,
            what="the release at the hub",
        )
        assert _parts(_settled(hub, job))["site-a"]["output"]["kind"] == "listing"

        site_a.add_person("nell", "nell is only a member here", PROJECT, "member")
        tab = Tab(browser, site_a.url)
        try:
            tab.sign_in("nell", "nell is only a member here")
            assert tab.page.locator("nav >> text=Site federation").count() == 0
            refused = tab.go("/site/federation")
            assert refused.status == 403
            assert "for the site's admins and its data steward" in tab.page.inner_text("main")
        finally:
            tab.close()


def test_a_job_s_images_stay_at_the_site_and_go_through_its_results_path(
    federation: Federation, stewards: None
) -> None:
    """An algorithm that makes segmentations: they never reach the hub (told only that
    image results were kept); they wait in the site's results inbox, mapped back to the
    hospital's originals by the site's vault, for a reidentifier to send to the hospital."""
    hub, sites = federation
    site_a = sites["site-a"]
    _approve(site_a, "threshold-segmentation")
    rene = ("rene", "rene maps results back at site a")
    site_a.add_person(*rene, PROJECT, "member", site_roles=("reidentifier",))
    men = [
        {"attribute": "modality", "op": "eq", "value": "CT"},
        {"attribute": "patient_sex", "op": "eq", "value": "M"},
    ]
    job = _submit(
        hub,
        {
            "algorithm": "threshold-segmentation",
            "criteria": men,
            "parameters": {"threshold": 500},
            "sites": ["site-a"],
        },
    )["id"]
    part = _parts(_settled(hub, job))["site-a"]
    assert part["state"] == "done", part
    assert part["reason"].startswith("image results kept at this site for its reviewers"), part
    assert part["output"] == {} and part["released"] == [], part

    def inbox() -> dict[str, dict[str, Any]]:
        listed = httpx.get(
            f"{site_a.url}/ingest/{PROJECT}/returns/items", headers=site_a.token(*rene)
        )
        assert listed.status_code == 200, listed.text
        return {item["key"]: item for item in listed.json()}

    wait_for(
        lambda: len(inbox()) == 3 and all(i["state"] == "waiting" for i in inbox().values()),
        timeout=120,
        what="three segmentations checked and mapped back at site a",
    )
    originals = {f"site-a-CTM{n}" for n in range(3)}  # the hospital's own patient IDs
    seen = set()
    for key, item in inbox().items():
        assert item["name"] == "1.2.840.10008.5.1.4.1.1.66.4", item  # Segmentation Storage
        copy = httpx.get(
            f"{site_a.url}/ingest/{PROJECT}/returns/items/{key}/content",
            headers=site_a.token(*rene),
        )
        assert copy.status_code == 200, copy.text
        seg = pydicom.dcmread(io.BytesIO(copy.content))
        seen.add(str(seg.PatientID))
        # every pixel of a man's series here lies at 700, above 500: the whole mask is set
        assert seg.pixel_array.all(), seg.pixel_array
    assert seen == originals, seen
    # nothing of it reached the hub's results
    at_hub = httpx.get(f"{hub.url}/api/projects/{PROJECT}/results", headers=hub.token(*ROSA)).json()
    assert not set(inbox()) & {r["key"] for r in at_hub}, at_hub

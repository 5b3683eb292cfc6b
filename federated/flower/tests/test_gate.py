"""The gate: only approved bundles, by the digest of the bytes received; Flower's runtime
still has the two names the gate wraps (this fails if a Flower upgrade moves them)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import flwr.supernode.runtime.run_clientapp as runtime
import pytest
from flwr.supercore.constant import TaskType
from flwr.supercore.superexec.executor.types import ExecutionSpec, LaunchResultStatus
from giftcloud_flower import siteapi
from giftcloud_flower.clientapp import NotApproved, check, guard
from giftcloud_flower.gate import SiteExecutor
from giftcloud_flower.site import Site, SiteConfigError, load


def test_an_unapproved_bundle_is_refused_with_its_digest(site: Site) -> None:
    content = b"not the approved app"
    digest = hashlib.sha256(content).hexdigest()
    with pytest.raises(
        NotApproved, match=f"site-a has not approved the app with digest sha256:{digest}"
    ):
        check(site, content, {"ab" * 32: "statistics"})


def test_an_approved_digest_passes(site: Site) -> None:
    content = b"the approved app"
    digest = hashlib.sha256(content).hexdigest()
    assert check(site, content, {digest: "stats"}) == digest


@pytest.fixture
def guarded(site: Site, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The runtime wrapped for ``site``, its api faked: what it approves, what it recorded,
    what Flower's own install was asked to install."""
    state: dict[str, Any] = {"apps": {}, "recorded": [], "installed": [], "fail": None}

    def approved(_: Site) -> dict[str, str]:
        if state["fail"] == "approvals":
            raise siteapi.SiteApiError("site-a's api cannot be reached")
        return dict(state["apps"])

    def record(_: Site, decision: dict[str, Any]) -> None:
        if state["fail"] == "audit":
            raise siteapi.SiteApiError("site-a's api answered 503")
        state["recorded"].append(decision)

    monkeypatch.setattr(siteapi, "approved", approved)
    monkeypatch.setattr(siteapi, "record", record)
    names = ("install_from_fab", "get_load_client_app_fn")
    for name in names:
        monkeypatch.setattr(runtime, name, getattr(runtime, name))  # put back afterwards
    monkeypatch.setattr(
        runtime, "install_from_fab", lambda c, *a, **k: state["installed"].append(c)
    )
    guard(site)
    return state


def test_the_gate_refuses_what_the_sites_api_has_not_approved(guarded: dict[str, Any]) -> None:
    with pytest.raises(NotApproved):
        runtime.install_from_fab(b"unapproved", skip_prompt=True)  # type: ignore[attr-defined]
    [refused] = guarded["recorded"]
    assert refused["decision"] == "refused"
    assert "sha256:" in refused["reason"]
    assert refused["digest"] == hashlib.sha256(b"unapproved").hexdigest()
    assert guarded["installed"] == []


def test_the_gate_runs_what_the_api_approves_now(guarded: dict[str, Any]) -> None:
    guarded["apps"] = {hashlib.sha256(b"app").hexdigest(): "statistics"}
    runtime.install_from_fab(b"app", skip_prompt=True)  # type: ignore[attr-defined]
    assert guarded["installed"] == [b"app"]
    assert guarded["recorded"][-1] | {"digest": ""} == {
        "decision": "run", "app": "statistics", "digest": ""
    }  # fmt: skip
    guarded["apps"] = {}  # revoked: the next run is refused at once
    with pytest.raises(NotApproved):
        runtime.install_from_fab(b"app", skip_prompt=True)  # type: ignore[attr-defined]


@pytest.mark.parametrize("failing", ["approvals", "audit"])
def test_the_gate_fails_closed_when_its_api_cannot_be_asked_or_told(
    guarded: dict[str, Any], failing: str
) -> None:
    guarded["apps"] = {hashlib.sha256(b"app").hexdigest(): "statistics"}
    guarded["fail"] = failing
    with pytest.raises((NotApproved, siteapi.SiteApiError)):
        runtime.install_from_fab(b"app", skip_prompt=True)  # type: ignore[attr-defined]
    assert guarded["installed"] == []  # nothing runs that was not checked and recorded


def test_a_site_file_that_is_not_an_object_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "site.json"
    path.write_text("[1]")
    with pytest.raises(SiteConfigError, match="not a JSON object"):
        load(path)


def test_the_executor_refuses_anything_but_a_clientapp(tmp_path: Path) -> None:
    spec = ExecutionSpec(
        task_type=TaskType.AGENT_APP,
        runtime_api_address="127.0.0.1:1",
        token="t",  # noqa: S106
        insecure=True,
        root_certificates_path=None,
        runtime_dependency_install=False,
        parent_pid=None,
        suppress_output=True,
        task_id=1,
    )
    result = SiteExecutor(str(tmp_path / "site.json")).launch(spec)
    assert result.status == LaunchResultStatus.FAILED
    assert "ClientApps only" in str(result.message)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"policy": {"k": 3}}, "never below 5"),
        ({"policy": {"max_bins_share": 2}}, "at most 1"),
        ({"apps": {"ab" * 32: "x"}}, "approvals and the audit live in the site's api"),
        ({"audit_file": "audit.jsonl"}, "approvals and the audit live in the site's api"),
        ({"api": None}, "wrong kind"),
        ({"api": {}}, "lacks"),
        ({"policy": {"k": "ten"}}, "wrong kind: invalid literal"),
        ({"policy": []}, "wrong kind"),
    ],
)
def test_a_site_file_that_would_loosen_the_rules_is_refused(
    tmp_path: Path, change: dict[str, object], reason: str
) -> None:
    raw = {"site": "s", "api": {"url": "u", "project": "p", "key_file": "k"}, **change}
    path = tmp_path / "site.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(SiteConfigError, match=reason):
        load(path)

"""The gate: only approved bundles, by the digest of the bytes received; Flower's runtime
still has the two names the gate wraps (this fails if a Flower upgrade moves them)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import flwr.supernode.runtime.run_clientapp as runtime
import pytest
from flwr.supercore.constant import TaskType
from flwr.supercore.superexec.executor.types import ExecutionSpec, LaunchResultStatus
from giftcloud_flower.clientapp import NotApproved, check, guard
from giftcloud_flower.gate import SiteExecutor
from giftcloud_flower.site import Site, SiteConfigError, load


def test_an_unapproved_bundle_is_refused_with_its_digest(site: Site) -> None:
    content = b"not the approved app"
    digest = hashlib.sha256(content).hexdigest()
    with pytest.raises(
        NotApproved, match=f"site-a has not approved the app with digest sha256:{digest}"
    ):
        check(site, content)


def test_an_approved_digest_passes(site: Site, tmp_path: Path) -> None:
    content = b"the approved app"
    digest = hashlib.sha256(content).hexdigest()
    approved = Site(**{**site.__dict__, "apps": {digest: "stats"}})
    assert check(approved, content) == digest


def test_the_runtime_names_the_gate_wraps_are_there_and_are_wrapped(site: Site) -> None:
    names = ("install_from_fab", "get_load_client_app_fn")
    before = [getattr(runtime, name) for name in names]
    try:
        guard(site)
        with pytest.raises(NotApproved):
            runtime.install_from_fab(b"unapproved", skip_prompt=True)  # type: ignore[attr-defined]
        audit = [json.loads(line) for line in site.audit_file.read_text().splitlines()]  # type: ignore[union-attr]
        assert audit[-1]["decision"] == "refused"
        assert "sha256:" in audit[-1]["reason"]
    finally:
        for name, value in zip(names, before, strict=True):
            setattr(runtime, name, value)


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
        ({"apps": {"short": "x"}}, "64 hex"),
        ({"api": None}, "wrong kind"),
        ({"api": {}}, "lacks"),
        ({"policy": {"k": "ten"}}, "wrong kind: invalid literal"),
        ({"policy": []}, "wrong kind"),
    ],
)
def test_a_site_file_that_would_loosen_the_rules_is_refused(
    tmp_path: Path, change: dict[str, object], reason: str
) -> None:
    raw = {"site": "s", "apps": {}, "api": {"url": "u", "project": "p", "key_file": "k"}, **change}
    path = tmp_path / "site.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(SiteConfigError, match=reason):
        load(path)

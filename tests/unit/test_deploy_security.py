"""checkov on the rendered Kubernetes overlays and the Dockerfile: nothing fails that
deploy/k8s/README.md does not list as accepted, with its reason."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from test_deploy import OVERLAYS, ROOT, kubectl

CHECKOV = "checkov==3.3.30"
ACCEPTED = set(re.findall(r"^\| (CKV\w+) \|", (ROOT / "deploy/k8s/README.md").read_text(), re.M))


def checkov(path: Path, framework: str) -> dict[str, object]:
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is missing: scripts/test installs it")
    done = subprocess.run(
        [
            uv,
            "tool",
            "run",
            "--from",
            CHECKOV,
            "checkov",
            "-f",
            str(path),
            "--framework",
            framework,
            "-o",
            "json",
            "--quiet",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    report = json.loads(done.stdout)
    assert isinstance(report, dict), done.stderr[-2000:]
    return report


def failures(report: dict[str, object]) -> set[str]:
    results = report["results"]
    assert isinstance(results, dict)
    return {str(check["check_id"]) for check in results["failed_checks"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_rendered_overlay_passes_checkov(overlay: str, tmp_path: Path) -> None:
    rendered = tmp_path / f"{overlay}.yaml"
    rendered.write_text(
        subprocess.run(
            [kubectl(), "kustomize", str(ROOT / "deploy" / "k8s" / "overlays" / overlay)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    report = checkov(rendered, "kubernetes")
    summary = report["summary"]
    assert isinstance(summary, dict) and summary["passed"] > 400
    assert failures(report) <= ACCEPTED, (
        f"not accepted in deploy/k8s/README.md: {failures(report) - ACCEPTED}"
    )


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "federated/flower/Dockerfile"])
def test_the_dockerfile_passes_checkov(dockerfile: str) -> None:
    report = checkov(ROOT / dockerfile, "dockerfile")
    assert failures(report) <= ACCEPTED

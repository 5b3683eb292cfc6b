"""Who the ``giftcloud`` command is, on which server: a stored sign-in per server (its
tokens in a file only the user can read, refreshed when they expire), a password for
scripts (``GIFTCLOUD_PASSWORD``), or an API key (``GIFTCLOUD_API_KEY``). Every failure is a
:class:`CommandError`: one line for the user, and an exit code."""

from __future__ import annotations

import getpass
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"
#: exit codes: everything done; something refused; usage, sign-in or connection trouble
DONE, REFUSED, TROUBLE, INTERRUPTED = 0, 1, 2, 130


class CommandError(Exception):
    """What went wrong, said in one line, and the exit code to leave with."""

    def __init__(self, message: str, code: int = TROUBLE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def config_folder() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "giftcloud"


def state_folder() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "giftcloud"


def normal(url: str) -> str:
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        url = "http://" + url
    return url


def default_url(given: str | None = None) -> str:
    """--url, else GIFTCLOUD_URL, else the server last signed in to, else 127.0.0.1:8000."""
    if given:
        return normal(given)
    if os.environ.get("GIFTCLOUD_URL"):
        return normal(os.environ["GIFTCLOUD_URL"])
    stored = Credentials().all()
    last = max(stored.items(), key=lambda kv: kv[1].get("signed_in_at", 0), default=None)
    return last[0] if last else DEFAULT_URL


class Credentials:
    """``credentials.json`` in the user's config folder, mode 0600: per server, the username
    and its tokens (never the password)."""

    def __init__(self, folder: Path | None = None) -> None:
        self.path = (folder or config_folder()) / "credentials.json"

    def all(self) -> dict[str, dict[str, Any]]:
        try:
            stored: dict[str, dict[str, Any]] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return stored

    def get(self, url: str) -> dict[str, Any] | None:
        return self.all().get(url)

    def put(self, url: str, entry: dict[str, Any] | None) -> None:
        stored = self.all()
        if entry is None:
            stored.pop(url, None)
        else:
            stored[url] = entry
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(stored, handle, indent=2)
        os.replace(temporary, self.path)


def read_password(prompt: str) -> str:
    """At a terminal, asked for without echo; otherwise the first line of stdin (as
    ``docker login --password-stdin``), so a script can pipe it in."""
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    line = sys.stdin.readline()
    if not line:
        raise CommandError("no password: type it at a terminal, or pipe it in on stdin")
    return line.rstrip("\r\n")


def detail(response: httpx.Response) -> str:
    """The server's reason, in one line."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    if isinstance(body, dict) and "detail" in body:
        found = body["detail"]
        if isinstance(found, list):  # a validation error: each field and what is wrong
            return "; ".join(
                f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg')}" for e in found
            )
        return str(found)
    return response.text.strip()[:300]


@contextmanager
def reaching(url: str) -> Iterator[None]:
    """Connection trouble as one line saying what to check."""
    try:
        yield
    except httpx.ConnectError as exc:
        raise CommandError(
            f"cannot reach {url} ({exc}): is giftcloud running there? (--url or GIFTCLOUD_URL)"
        ) from None
    except httpx.TimeoutException:
        raise CommandError(f"{url} did not answer in time") from None
    except httpx.HTTPError as exc:
        raise CommandError(f"talking to {url} failed: {exc}") from None


@contextmanager
def undone_on_failure(session: Session, path: str, what: str) -> Iterator[None]:
    """What was just made at ``path`` is deleted again when the next step fails: nothing is
    left half made (a credential without the registration it was made for)."""
    try:
        yield
    except CommandError:
        session.request("DELETE", path, what)
        raise


def sign_in(url: str, username: str, password: str) -> dict[str, Any]:
    """Tokens for a username and password; :class:`CommandError` with the server's reason."""
    with reaching(url):
        response = httpx.post(
            f"{url}/auth/token", data={"username": username, "password": password}, timeout=60
        )
    if response.status_code != 200:
        raise CommandError(f"signing in to {url} as {username} failed: {detail(response)}")
    tokens = response.json()
    return {
        "username": username,
        "access_token": tokens["access_token"],
        "access_expires": time.time() + int(tokens["expires_in"]) - 30,
        "refresh_token": tokens.get("refresh_token"),
        "signed_in_at": time.time(),
    }


@dataclass
class Session:
    """An HTTP client for one server, signed in; :meth:`check` turns answers into errors."""

    url: str
    http: httpx.Client
    who: str

    def check(self, response: httpx.Response, what: str) -> httpx.Response:
        if response.status_code == 401:
            raise CommandError(
                f"{what}: not signed in to {self.url} ({detail(response)}): run giftcloud login"
            )
        if response.status_code >= 400:
            raise CommandError(f"{what}: {detail(response)}")
        return response

    def get(self, path: str, what: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, what, **kwargs)

    def request(self, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
        with reaching(self.url):
            return self.check(self.http.request(method, path, **kwargs), what)

    def close(self) -> None:
        self.http.close()


def open_session(
    url: str,
    *,
    username: str | None = None,
    api_key: str | None = None,
    store: Credentials | None = None,
) -> Session:
    """A session by an API key (given or GIFTCLOUD_API_KEY), else GIFTCLOUD_PASSWORD (for
    scripts), else the sign-in stored by ``giftcloud login`` (refreshed when its token has
    expired; at a terminal, the password is asked for again when the sign-in has ended)."""
    key = api_key or os.environ.get("GIFTCLOUD_API_KEY")
    if key:
        return Session(url, _client(url, key), "an API key")
    secret = os.environ.get("GIFTCLOUD_PASSWORD")
    credentials = store or Credentials()
    if secret:
        known = credentials.get(url) or {}
        who = username or os.environ.get("GIFTCLOUD_USERNAME") or known.get("username")
        if not who:
            raise CommandError("GIFTCLOUD_PASSWORD needs a --user (or GIFTCLOUD_USERNAME)")
        entry = sign_in(url, who, secret)
        return Session(url, _client(url, entry["access_token"]), entry["username"])
    stored = credentials.get(url)
    if stored is None:
        raise CommandError(f"not signed in to {url}: run giftcloud login {url}")
    if stored["access_expires"] < time.time():
        try:
            stored = _refresh(url, stored, credentials)
        except CommandError:
            if not sys.stdin.isatty():
                raise
            print(f"your sign-in to {url} has ended", file=sys.stderr)
            password = read_password(f"password of {stored['username']}: ")
            stored = sign_in(url, stored["username"], password)
            credentials.put(url, stored)
    return Session(url, _client(url, stored["access_token"]), stored["username"])


def _refresh(url: str, entry: dict[str, Any], credentials: Credentials) -> dict[str, Any]:
    if not entry.get("refresh_token"):
        raise CommandError(f"your sign-in to {url} has expired: run giftcloud login {url}")
    with reaching(url):
        response = httpx.post(
            f"{url}/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": entry["refresh_token"]},
            timeout=60,
        )
    if response.status_code != 200:
        credentials.put(url, None)
        raise CommandError(
            f"your sign-in to {url} has ended ({detail(response)}): run giftcloud login {url}"
        )
    tokens = response.json()
    renewed = {
        **entry,
        "access_token": tokens["access_token"],
        "access_expires": time.time() + int(tokens["expires_in"]) - 30,
        "refresh_token": tokens.get("refresh_token", entry["refresh_token"]),
    }
    credentials.put(url, renewed)
    return renewed


def _client(url: str, bearer: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=300, headers={"Authorization": f"Bearer {bearer}"})

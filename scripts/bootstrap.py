"""Run giftcloud from this checkout on any Python >= 3.11, with nothing installed first.

    python3 scripts/bootstrap.py up          # (what scripts/giftcloud does)

Stock Debian and Ubuntu Pythons refuse ``pip install`` outside a virtual environment (PEP
668) and may lack pip and venv altogether. This script needs neither: it fetches uv (one
pinned release, its checksum verified) from PyPI into a private folder, lets uv make the
project's environment with this Python (``uv sync --frozen --no-dev``: no test tools), then
runs ``giftcloud`` with the arguments given. Only the standard library is used.

    python3 scripts/bootstrap.py --print-uv  # fetch uv if needed, print its path (scripts/test)
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

UV_VERSION = "0.13.9"
INDEX = "https://pypi.org/pypi/uv/json"
ROOT = Path(__file__).resolve().parents[1]


def say(message: str) -> None:
    print(f"giftcloud: {message}", file=sys.stderr, flush=True)


def fail(message: str, code: int = 2) -> None:
    say(message)
    raise SystemExit(code)


def private_folder() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "giftcloud" / f"uv-{UV_VERSION}"


def usable(uv: str) -> bool:
    try:
        out = subprocess.run([uv, "--version"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return False
    parts = out.split()[1].split(".") if len(out.split()) > 1 else []
    return len(parts) >= 2 and (int(parts[0]), int(parts[1])) >= (0, 13)


def wheel_for_this_machine(files: list[dict[str, object]]) -> dict[str, object]:
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(
        platform.machine().lower(), platform.machine().lower()
    )
    if sys.platform != "linux":
        fail(f"this bootstrap knows Linux only; install uv yourself ({sys.platform})")
    musl = "musl" in (platform.libc_ver()[0] or "") or Path("/etc/alpine-release").exists()
    tag = "musllinux" if musl else "manylinux"
    for entry in files:
        name = str(entry["filename"])
        if name.endswith(".whl") and tag in name and name.split("-")[-1].count(machine):
            return entry
    fail(f"no uv {UV_VERSION} wheel on PyPI for {tag} {machine}")
    raise AssertionError("unreachable")


def fetch_uv() -> Path:
    """uv in the private folder: fetched from PyPI the first time, its checksum checked."""
    folder = private_folder()
    uv = folder / "uv"
    if uv.is_file() and usable(str(uv)):
        return uv
    say(f"fetching uv {UV_VERSION} from PyPI into {folder}")
    try:
        with urllib.request.urlopen(INDEX, timeout=60) as r:
            files = json.load(r)["releases"][UV_VERSION]
        wheel = wheel_for_this_machine(files)
        url = urllib.parse.urljoin(INDEX, str(wheel["url"]))  # a mirror may answer relative URLs
        if not url.startswith("https://"):
            fail(f"PyPI named an unexpected place for the uv wheel: {url}")
        with urllib.request.urlopen(url, timeout=300) as r:  # noqa: S310 (https, checked)
            data = r.read()
    except OSError as exc:
        fail(f"cannot reach PyPI to fetch uv ({exc}); install uv yourself and run again")
    digests = wheel["digests"]
    assert isinstance(digests, dict)
    if hashlib.sha256(data).hexdigest() != digests["sha256"]:
        fail("the uv wheel from PyPI does not match its published checksum: not using it")
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        archive = Path(scratch) / "uv.whl"
        archive.write_bytes(data)
        with zipfile.ZipFile(archive) as whl:
            inside = next(n for n in whl.namelist() if n.endswith("/scripts/uv"))
            target = Path(scratch) / "uv"
            target.write_bytes(whl.read(inside))
        target.chmod(0o755)
        os.replace(target, uv)
    return uv


def find_uv() -> Path:
    on_path = shutil.which("uv")
    if on_path and usable(on_path):
        return Path(on_path)
    return fetch_uv()


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 (this script may be run by an older Python)
        fail(f"giftcloud needs Python 3.11 or newer; this is {platform.python_version()}")
    uv = find_uv()
    if argv[:1] == ["--print-uv"]:
        print(uv)
        return 0
    # uv trusts what this machine trusts, as the download of uv did (a hospital's proxy CA
    # is in the system's store, not in uv's bundled roots); it never fetches a Python
    environment = {"UV_SYSTEM_CERTS": "true", **os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    command = [str(uv), "sync", "--frozen", "--no-dev", "--quiet"]
    if not (ROOT / ".venv" / "bin" / "python").exists():  # else keep the one it was made with
        command += ["--python", sys.executable]
    synced = subprocess.run(
        command,
        cwd=ROOT,
        env=environment,
        check=False,
    )
    if synced.returncode != 0:
        fail("could not install giftcloud's environment (see above)", synced.returncode)
    giftcloud = ROOT / ".venv" / "bin" / "giftcloud"
    os.execve(str(giftcloud), [str(giftcloud), *argv], environment)  # noqa: S606 (ours)
    return 0  # not reached


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

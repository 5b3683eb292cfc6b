"""OHIF's prebuilt viewer (``@ohif/app`` on the npm registry) put where api serves it.

The release is pinned by version and by the registry's SHA-512 of its tarball: a tarball
that does not hash to it is refused. Its ``dist/`` was built to be served at ``/``; the
copy made here is rewritten to live under ``/ohif/`` (OHIF reads ``window.PUBLIC_URL`` for
its routes, but webpack's chunk path and the page's links were fixed at build time), and
the hashes of its page's inline scripts are kept for the Content Security Policy.

Run at image build time (``python -m giftcloud_api.ohif.install /opt/ohif``) and by
``giftcloud up`` on first use; nothing comes from a CDN at run time.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

#: where api serves the viewer (the gateway's ``/`` goes to api, so no route of its own)
BASE = "/ohif/"
VERSION = "3.13.2"
#: the registry's ``dist.integrity`` of that version (``npm view @ohif/app@3.13.2``)
INTEGRITY = "sha512-WZdxmpmG7rqFgW9ZJLcbgr3XCtLi1KDNPoMaeY5PPe6j4G4fjEjjkycZM6C6Zk2F87BKxFfpq+jd5xXZB9E8EA=="
REGISTRY = "https://registry.npmjs.org"
#: written last into an installed folder: what it holds (no marker, not installed)
MARKER = "giftcloud-ohif.json"
#: a tarball larger than this is not OHIF (3.13.2's is 50 MB)
MAX_TARBALL = 400 * 1024 * 1024


class InstallError(Exception):
    """Why the viewer could not be installed, in one line."""


@dataclass(frozen=True)
class Installed:
    """An installed viewer: its folder, its version and the CSP hashes of its inline scripts."""

    folder: Path
    version: str
    script_hashes: tuple[str, ...]


def installed(folder: Path) -> Installed | None:
    """The viewer installed in ``folder``, or None (nothing there, or a half-made copy)."""
    try:
        marker = json.loads((folder / MARKER).read_text())
        return Installed(folder, str(marker["version"]), tuple(marker["script_hashes"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def user_cache() -> Path:
    """Where ``giftcloud up`` keeps the viewer: one copy per user, whatever the data folder."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "giftcloud" / f"ohif-{VERSION}"


def registry_url() -> str:
    """npm's own setting names a mirror (a hospital's proxy of the registry) when set."""
    named = os.environ.get("NPM_CONFIG_REGISTRY") or os.environ.get("npm_config_registry")  # noqa: SIM112 (npm reads both)
    return (named or REGISTRY).rstrip("/")


def download(registry: str) -> bytes:
    url = f"{registry}/@ohif/app/-/app-{VERSION}.tgz"
    try:
        with urllib.request.urlopen(url, timeout=120) as answer:  # noqa: S310 (https or a mirror)
            data: bytes = answer.read(MAX_TARBALL + 1)
    except OSError as exc:
        raise InstallError(f"could not download OHIF {VERSION} from {url}: {exc}") from None
    if len(data) > MAX_TARBALL:
        raise InstallError(f"{url} is larger than {MAX_TARBALL} bytes: not OHIF's tarball")
    return data


def check(tarball: bytes) -> None:
    algorithm, _, expected = INTEGRITY.partition("-")
    digest = base64.b64encode(hashlib.new(algorithm, tarball).digest()).decode()
    if digest != expected:
        raise InstallError(
            f"the tarball of @ohif/app {VERSION} does not match its pinned {algorithm}"
            f" ({algorithm}-{digest}): refused"
        )


def unpack(tarball: bytes, into: Path) -> None:
    """``package/dist/`` of the tarball into ``into``: regular files and folders only, no
    path out of it."""
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        for member in archive.getmembers():
            name = member.name
            if not name.startswith("package/dist/") or not (member.isfile() or member.isdir()):
                continue
            relative = Path(name.removeprefix("package/dist/"))
            if relative.is_absolute() or ".." in relative.parts:
                raise InstallError(f"the tarball names a path out of its folder: {name!r}")
            target = into / relative
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            source = archive.extractfile(member)
            assert source is not None  # a regular file
            with source, target.open("wb") as out:
                shutil.copyfileobj(source, out)


#: where the build fixed ``/`` as the viewer's own address
_CHUNK_PATH = '__webpack_require__.p = "/";'
_PAGE_LINK = re.compile(r'(href|src)="/(?!/)')
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def rebase(folder: Path) -> tuple[str, ...]:
    """Rewrite the build's ``/`` to :data:`BASE`; the CSP hashes of the page's inline
    scripts (after the rewrite)."""
    moved = 0
    for script in folder.glob("*.js"):
        text = script.read_text(encoding="utf-8")
        if _CHUNK_PATH in text:
            script.write_text(text.replace(_CHUNK_PATH, f'__webpack_require__.p = "{BASE}";'))
            moved += 1
    if moved == 0:
        raise InstallError("no webpack chunk path found to move to /ohif/: not OHIF 3's build")
    page = folder / "index.html"
    html = page.read_text(encoding="utf-8")
    if 'window.PUBLIC_URL="/"' not in html:
        raise InstallError("index.html sets no PUBLIC_URL: not OHIF 3's build")
    html = html.replace('window.PUBLIC_URL="/"', f'window.PUBLIC_URL="{BASE}"')
    html = _PAGE_LINK.sub(lambda m: f'{m.group(1)}="{BASE}', html)
    page.write_text(html, encoding="utf-8")
    for sheet in folder.glob("*.css"):
        text = sheet.read_text(encoding="utf-8")
        sheet.write_text(re.sub(r"url\(/(?!/)", f"url({BASE}", text), encoding="utf-8")
    manifest = folder / "manifest.json"
    if manifest.exists():
        text = manifest.read_text(encoding="utf-8")
        manifest.write_text(text.replace('"/assets/', f'"{BASE}assets/'), encoding="utf-8")
    # the app's configuration is api's, per viewer (giftcloud_api.ohif.config)
    (folder / "app-config.js").unlink(missing_ok=True)
    return tuple(
        "sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        for body in _INLINE_SCRIPT.findall(html)
    )


def prepare(folder: Path) -> None:
    """An unpacked build made ready to serve: rebased, then marked (last: a folder without
    the marker is not installed)."""
    hashes = rebase(folder)
    marker = {"version": VERSION, "base": BASE, "script_hashes": list(hashes)}
    (folder / MARKER).write_text(json.dumps(marker))


def install(target: Path, tarball: bytes | None = None) -> Installed:
    """The pinned viewer in ``target`` (kept when it is already there)."""
    present = installed(target)
    if present is not None and present.version == VERSION:
        return present
    if present is None and target.is_dir() and any(target.iterdir()):
        raise InstallError(f"{target} holds files that are not OHIF's: name an empty or new folder")
    data = download(registry_url()) if tarball is None else tarball
    check(data)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".ohif-", dir=target.parent))
    try:
        unpack(data, staging)
        prepare(staging)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    done = installed(target)
    assert done is not None
    return done


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m giftcloud_api.ohif.install FOLDER", file=sys.stderr)
        return 2
    try:
        done = install(Path(args[0]))
    except (InstallError, OSError) as exc:
        print(f"giftcloud: OHIF not installed: {exc}", file=sys.stderr)
        return 1
    print(f"giftcloud: OHIF {done.version} installed in {done.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

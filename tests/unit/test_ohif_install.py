"""OHIF's installation (giftcloud_api.ohif.install) on a miniature of its build: the pinned
hash checked, nothing unpacked out of its folder, the build's ``/`` moved to ``/ohif/``,
the inline scripts' hashes kept, a folder of someone else's files never removed. (The
real tarball is installed and run by tests/browser/test_ohif.py.)"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from giftcloud_api.ohif import install as ohif
from giftcloud_api.ohif.config import app_config, page_policy
from support.ohif import PAGE, miniature


def tarball(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    return out.getvalue()


def test_the_build_is_moved_under_ohif_and_its_inline_scripts_hashed(tmp_path: Path) -> None:
    folder = miniature(tmp_path / "dist")
    ohif.prepare(folder)
    page = (folder / "index.html").read_text()
    assert 'window.PUBLIC_URL="/ohif/"' in page
    assert 'src="/ohif/app-config.js"' in page and 'href="/ohif/app.bundle.css"' in page
    assert 'src="/ohif/app.bundle.0f6159c501addfe9.js"' in page
    assert 'href="//elsewhere.example/"' in page  # another origin's address is not a path
    for bundle in ("app.bundle.0f6159c501addfe9.js", "compute.bundle.0fc3a3ee85296cf2.js"):
        assert '__webpack_require__.p = "/ohif/";' in (folder / bundle).read_text()
    assert "url(/ohif/a34f9d1faa5f3315.woff2)" in (folder / "app.bundle.css").read_text()
    assert '"/ohif/assets/a.png"' in (folder / "manifest.json").read_text()
    assert not (folder / "app-config.js").exists()  # api writes it, per viewer
    done = ohif.installed(folder)
    assert done is not None and done.version == ohif.VERSION
    inline = 'console.time("x"),window.PUBLIC_URL="/ohif/"'
    expected = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
    assert done.script_hashes == (f"sha256-{expected}",)
    assert f"'sha256-{expected}'" in page_policy(done.script_hashes)


def test_a_build_that_is_not_ohif_3s_is_refused(tmp_path: Path) -> None:
    folder = miniature(tmp_path / "dist")
    (folder / "app.bundle.0f6159c501addfe9.js").write_text("no public path here")
    (folder / "compute.bundle.0fc3a3ee85296cf2.js").write_text("nor here")
    with pytest.raises(ohif.InstallError, match="no webpack chunk path"):
        ohif.prepare(folder)
    assert ohif.installed(folder) is None  # not marked: not installed


def test_a_tarball_that_does_not_match_the_pinned_hash_is_refused(tmp_path: Path) -> None:
    forged = tarball({"package/dist/index.html": PAGE.encode()})
    with pytest.raises(ohif.InstallError, match="does not match its pinned sha512"):
        ohif.install(tmp_path / "ohif", forged)
    assert not (tmp_path / "ohif").exists()
    assert list(tmp_path.iterdir()) == []  # its staging folder removed too


def test_unpacking_takes_dist_only_and_nothing_out_of_its_folder(tmp_path: Path) -> None:
    good = tarball(
        {"package/dist/index.html": b"page", "package/package.json": b"{}"},
        links={"package/dist/link.js": "/etc/passwd"},
    )
    ohif.unpack(good, tmp_path / "a")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["index.html"]
    escaping = tarball({"package/dist/../../../escaped.js": b"x"})
    with pytest.raises(ohif.InstallError, match="out of its folder"):
        ohif.unpack(escaping, tmp_path / "b")
    assert not (tmp_path / "escaped.js").exists()


def test_an_installed_viewer_is_kept_and_someone_elses_folder_never_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_download(registry: str) -> bytes:
        raise AssertionError("nothing is downloaded when the viewer is installed")

    monkeypatch.setattr(ohif, "download", no_download)
    folder = miniature(tmp_path / "ohif")
    ohif.prepare(folder)
    assert ohif.install(folder).folder == folder  # there already: kept as it is

    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "precious.txt").write_text("not OHIF")
    with pytest.raises(ohif.InstallError, match="holds files that are not OHIF's"):
        ohif.install(theirs, tarball({"package/dist/x": b""}))
    assert (theirs / "precious.txt").read_text() == "not OHIF"


def test_the_registry_is_npms_unless_npm_is_told_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NPM_CONFIG_REGISTRY", raising=False)
    monkeypatch.delenv("npm_config_registry", raising=False)
    assert ohif.registry_url() == "https://registry.npmjs.org"
    monkeypatch.setenv("npm_config_registry", "https://npm.hospital.example/")
    assert ohif.registry_url() == "https://npm.hospital.example"


def test_the_configuration_has_a_data_source_per_readable_project() -> None:
    script = app_config(["heart", "lungs"])
    config = json.loads(script.split("window.config = ", 1)[1].split(";\n", 1)[0])
    assert [s["sourceName"] for s in config["dataSources"]] == ["heart", "lungs"]
    assert config["defaultDataSourceName"] == "heart" and config["routerBasename"] == "/ohif"
    # the roots are the page's own origin: the session's cookie goes with every request
    assert "window.location.origin + '/dicomweb/' + source.sourceName" in script
    assert all("qidoRoot" not in s["configuration"] for s in config["dataSources"])
    assert "http" not in json.dumps(config)  # no other server named

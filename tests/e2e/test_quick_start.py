"""The README's Quick start, as a newcomer runs it: a fresh clone, an empty HOME, Debian's
own python3 and nothing else on PATH; the exact command line of the README, then the next
block's commands (login, project, send, ls, download) against what it started."""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pydicom
import pytest
from support.dicom_files import distinct_instances
from support.infra import ROOT, free_port, stop_process
from support.readme import section, shell_blocks

SYSTEM_PYTHON = Path("/usr/bin/python3")
#: development tools a user's install must not bring
DEV_TOOLS = ("mypy", "ruff", "pytest", "kubectl", "weed", "lint-imports", "schemathesis")


def _code(language: str, starting: str = "") -> str:
    """The Quick start's first ```language block that starts with ``starting``, as written."""
    quick = section("Quick start")
    for code in re.findall(rf"```{language}\n(.*?)```", quick, re.S):
        if code.startswith(starting):
            return str(code)
    raise AssertionError(f"no {language} block starting {starting!r} in the Quick start")


def _blocks() -> tuple[list[str], list[str]]:
    quick = section("Quick start")
    blocks = [b for b in shell_blocks() if b and all(line in quick for line in b)]
    return blocks[0], blocks[1]


@pytest.mark.skipif(
    not SYSTEM_PYTHON.exists(), reason="no /usr/bin/python3 (scripts/test installs Debian's)"
)
@pytest.mark.timeout(1500)
def test_the_quick_start_on_a_fresh_clone(tmp_path: Path) -> None:
    install, first_steps = _blocks()
    assert len(install) == 2 and install[0].startswith("git clone "), install
    assert "scripts/giftcloud up" in install[1]
    clone = tmp_path / "giftcloud"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "HOME": str(tmp_path / "home"),
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "GIFTCLOUD_PORT": str(port),  # the README: --port or GIFTCLOUD_PORT for another port
    }
    (tmp_path / "home").mkdir()
    log_path = tmp_path / "up.log"
    # the README's line as a shell runs it: NAME=value words first, then the command
    words = shlex.split(install[1])
    assignments = [w for w in words if re.match(r"^[A-Z_]+=", w)]
    command = words[len(assignments) :]
    assert words[: len(assignments)] == assignments and command[0] == "scripts/giftcloud"
    with log_path.open("wb") as log:
        up = subprocess.Popen(
            command,
            cwd=clone,
            env={**env, **dict(a.split("=", 1) for a in assignments)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        deadline = time.monotonic() + 900  # the first run fetches uv and every dependency
        while not ready():
            assert up.poll() is None, f"up ended ({up.returncode}): {log_path.read_text()[-3000:]}"
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(1)
        venv = clone / ".venv" / "bin"
        assert (venv / "giftcloud").exists()
        assert os.path.realpath(venv / "python").startswith("/usr/"), "not Debian's python3"
        brought = [tool for tool in DEV_TOOLS if (venv / tool).exists()]
        assert brought == [], f"--no-dev brought {brought}"

        password = re.search(r"GIFTCLOUD_ADMIN_PASSWORD='([^']+)'", install[1])
        assert password is not None
        dicom = tmp_path / "dicom"
        dicom.mkdir()
        for i, data in enumerate(distinct_instances(2, "7301")):
            (dicom / f"IM{i}").write_bytes(data)
        (dicom / "notes.txt").write_text("not an image")
        said = []
        for line in first_steps:
            words = shlex.split(line.replace("path/to/dicom/", f"{dicom}/"))
            done = subprocess.run(
                words,
                cwd=clone,
                env={**env, "GIFTCLOUD_URL": url},
                input=password.group(1) + "\n" if "login" in words else "",
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
                start_new_session=True,
            )
            output = done.stdout + done.stderr
            assert "Traceback" not in output, output
            said.append((line, done.returncode, output))
            expected = 1 if "send" in words else 0  # the text file is refused, and named
            assert done.returncode == expected, said
        sent = said[2][2]
        assert f"refused: {dicom}/notes.txt: not a DICOM Part 10 file" in sent, sent
        assert "3 file(s): 2 archived, 0 rejected after de-identification, 1 refused" in sent
        subjects = said[3][2].splitlines()
        assert subjects[0].split() == ["SUBJECT", "STUDIES"] and len(subjects) == 2, subjects
        fetched = list((clone / "fetched").rglob("*.dcm"))
        assert len(fetched) == 2, said[4]
        for line, code, output in said:
            print(f"$ {line}  [exit {code}]\n{output}")
        # the DICOMweb block, as written (bash), then the Python one (dicomweb-client)
        dicomweb, python = _code("sh", "TOKEN=$(scripts/giftcloud token)"), _code("python")
        for language, code, runner in (
            ("sh", dicomweb, ["bash", "-euo", "pipefail", "-c"]),
            ("python", python, [sys.executable, "-c"]),
        ):
            done = subprocess.run(
                [*runner, code.replace("http://127.0.0.1:8000", url)],
                cwd=clone,
                env={**env, "GIFTCLOUD_URL": url},
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            print(f"$ the README's {language} block [exit {done.returncode}]\n{done.stdout}")
            assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
        one = pydicom.dcmread(clone / "one.dcm")
        assert one.PatientIdentityRemoved == "YES"
        assert json.loads((clone / "metadata.json").read_text())[0]["0020000D"]
        assert (clone / "study.multipart").stat().st_size > 2 * one.PixelData.__len__()
        zips = list(clone.glob("*.zip"))
        assert len(zips) == 1 and zipfile.ZipFile(zips[0]).testzip() is None, zips
        assert "2 instance(s) of study" in done.stdout, done.stdout
        # and what the Quick start ends with: the web interface at the same address
        page = httpx.get(f"{url}/", follow_redirects=True, timeout=30)
        assert page.status_code == 200 and "Sign in to giftcloud" in page.text, page.text[:300]
    finally:
        stop_process(up, signal.SIGINT, timeout=90)  # Ctrl-C, as the README says
    log_text = log_path.read_text()
    assert up.returncode == 0, log_text[-3000:]
    assert "Traceback" not in log_text, log_text[-3000:]

"""The ``giftcloud`` command as a user meets it, against the five services behind nginx:
sign-in, listing, sending with every refused file named, resuming, downloading. Every
failure is one line and an exit code, never a traceback."""

import json
import signal
import subprocess
import time
import zipfile
from pathlib import Path

import httpx
import pydicom
import pytest
from support.cli import User, one_line
from support.deployment import Deployment
from support.dicom_files import (
    distinct_instances,
    read,
    synthetic_instance,
    to_bytes,
    uncleanable_instance,
)
from support.infra import VENV_BIN, free_port, wait_for

PASSWORD = "admin-test-password"


@pytest.fixture(scope="module")
def project(deployment: Deployment) -> str:
    deployment.create_project("cli")
    return "cli"


def test_sign_in_and_out(deployment: Deployment, tmp_path: Path, project: str) -> None:
    user = User(tmp_path)
    url = deployment.url
    refused = user.run("projects", "--url", url, code=2)
    assert one_line(refused) == f"giftcloud: not signed in to {url}: run giftcloud login {url}"
    wrong = user.run("login", url, "--username", "admin", stdin="not-the-password\n", code=2)
    assert f"signing in to {url} as admin failed" in one_line(wrong)
    assert not user.credentials.exists()

    user.run("login", url, "--username", "admin", stdin=PASSWORD + "\n")
    assert user.credentials.stat().st_mode & 0o777 == 0o600
    stored = user.credentials.read_text()
    assert PASSWORD not in stored and url in stored
    # the server signed in to last is the default from now on
    assert user.run("whoami").stdout.startswith(f"admin at {url}")
    assert project in user.run("projects").stdout.split()

    # an expired access token is refreshed with the (rotating) refresh token
    entry = json.loads(user.credentials.read_text())
    entry[url]["access_expires"] = 0
    user.credentials.write_text(json.dumps(entry))
    assert project in user.run("projects").stdout.split()
    renewed = json.loads(user.credentials.read_text())[url]
    assert renewed["refresh_token"] != entry[url]["refresh_token"]
    assert renewed["access_expires"] > time.time()

    assert user.run("logout").stdout.strip() == f"signed out of {url}"
    assert user.run("projects", code=2).stderr.startswith("giftcloud: not signed in")
    # the refresh token ended at the server too
    ended = httpx.post(
        f"{url}/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": renewed["refresh_token"]},
    )
    assert ended.status_code in (400, 401), ended.text
    # --url on login, as on every other command (the README says so): a real sign-in
    user.run("login", "--url", url, "--username", "admin", stdin=PASSWORD + "\n")
    assert user.run("whoami", "--url", url).stdout.startswith(f"admin at {url}")
    assert user.run("logout", "--url", url).stdout.strip() == f"signed out of {url}"


def test_mistakes_are_one_line_and_exit_2(
    deployment: Deployment, tmp_path: Path, project: str
) -> None:
    user = User(tmp_path)
    url = deployment.url
    scripted = {"GIFTCLOUD_USERNAME": "admin", "GIFTCLOUD_PASSWORD": PASSWORD}
    file = tmp_path / "one.dcm"
    file.write_bytes(synthetic_instance())

    missing = user.run("send", "--url", url, "--project", project, "no/such/folder", code=2)
    assert one_line(missing) == "giftcloud: no/such/folder: no such file or folder"
    unknown = user.run("send", "--url", url, "--project", "nope", str(file), env=scripted, code=2)
    assert "no project 'nope'" in one_line(unknown)
    nobody = f"http://127.0.0.1:{free_port()}"
    away = user.run("send", "--url", nobody, "--project", project, str(file), env=scripted, code=2)
    assert f"cannot reach {nobody}" in one_line(away)
    wrong = {**scripted, "GIFTCLOUD_PASSWORD": "wrong"}
    denied = user.run("ls", project, "--url", url, env=wrong, code=2)
    assert "signing in" in one_line(denied) and "failed" in one_line(denied)
    no_name = user.run("projects", "--url", url, env={"GIFTCLOUD_PASSWORD": PASSWORD}, code=2)
    assert "needs a --user" in one_line(no_name)
    assert user.run("send", "--project", code=2).stderr.startswith("usage:")
    for command in ("", "up", "login", "logout", "projects", "ls", "download", "send"):
        helped = user.run(*command.split(), "--help")
        assert "exit codes: 0 all done" in helped.stdout
    assert user.run("--version").stdout.startswith("giftcloud ")


def test_send_names_every_file_it_does_not_archive(
    deployment: Deployment, tmp_path: Path, project: str
) -> None:
    user = User(tmp_path)
    user.run("login", deployment.url, "--username", "admin", stdin=PASSWORD + "\n")
    folder = tmp_path / "media"
    (folder / "IMAGES").mkdir(parents=True)
    good = distinct_instances(3, "7101")
    for i, data in enumerate(good[:2]):
        (folder / "IMAGES" / f"IM{i}").write_bytes(data)
    (folder / "DICOMDIR").write_bytes(b"\0" * 128 + b"DICM" + b"an index, not an image")
    (folder / "notes.txt").write_text("not an image")
    (folder / "IMAGES" / "CUT").write_bytes(good[2][:-40])  # truncated
    burned = read(synthetic_instance(patient_id="MRN-BURNED"))
    burned.BurnedInAnnotation = "YES"
    (folder / "IMAGES" / "BURNED").write_bytes(to_bytes(burned))
    (folder / "IMAGES" / "ONEBIT").write_bytes(uncleanable_instance())
    with zipfile.ZipFile(folder / "more.zip", "w") as archive:
        archive.writestr("inner/IM9", good[2])

    sent = user.run("send", "--project", project, str(folder), code=1)
    lines = sent.stdout.splitlines()
    refused = {
        line.split(": ", 2)[1]: line.split(": ", 2)[2]
        for line in lines
        if line.startswith(("refused: ", "rejected after de-identification: "))
    }
    assert refused[str(folder / "notes.txt")].startswith("not a DICOM")
    assert "truncated" in refused[str(folder / "IMAGES" / "CUT")]
    assert "burned-in text" in refused[str(folder / "IMAGES" / "BURNED")]
    assert refused[str(folder / "IMAGES" / "ONEBIT")] == "1-bit pixel data cannot be cleaned"
    assert f"rejected after de-identification: {folder / 'IMAGES' / 'ONEBIT'}:" in sent.stdout
    assert lines[-1] == ("7 file(s): 3 archived, 1 rejected after de-identification, 3 refused"), (
        sent.stdout
    )
    assert deployment.instance_count(project, deployment.token()) == 3

    again = user.run("send", "--project", project, str(folder), code=1)
    assert again.stdout.splitlines()[-1] == (
        "7 file(s): 0 archived, 1 rejected after de-identification, 3 refused,"
        " 3 sent before and archived: not sent again"
    ), again.stdout

    # the uploads, and the rejection with its reason
    recent = [line.split() for line in user.run("uploads", project).stdout.splitlines()]
    assert recent[0][:2] == ["UPLOAD", "CREATED"]
    details = [user.run("uploads", project, row[0]).stdout for row in recent[1:]]
    assert any("rejected: file" in d and "1-bit pixel data" in d for d in details), details
    # what the site refused on arrival is listed too, by place and SOP Instance UID, with why
    assert any(
        line.startswith("refused: file ") and "burned-in text" in line and "Next step:" in line
        for d in details
        for line in d.splitlines()
    ), details

    # the project's owner reviews the rejected files: one released (rejected again, 1-bit
    # pixels stay uncleanable), then both deleted for good
    def held() -> list[list[str]]:
        listed = user.run("quarantine", project).stdout.splitlines()
        return [line.split(maxsplit=4) for line in listed[1:]]

    rows = held()
    assert len(rows) == 2 and all("1-bit pixel data" in row[4] for row in rows), rows
    released = user.run("quarantine", project, "--release", rows[0][0])
    assert released.stdout.startswith("1 file(s) released"), released.stdout
    wait_for(
        lambda: [row[3] for row in held()] == ["held", "held"],
        timeout=30,
        what="the released file held again",
    )
    keys = [row[0] for row in held()]
    assert user.run("quarantine", project, "--delete", *keys).stdout.startswith("2 file(s) deleted")
    assert user.run("quarantine", project).stdout.startswith("nothing is held")
    gone = user.run("quarantine", project, "--delete", keys[0], code=2)
    assert "is not held in the quarantine" in one_line(gone)
    # a token for curl and DICOMweb clients
    bearer = user.run("token").stdout.strip()
    studies = httpx.get(
        f"{deployment.url}/dicomweb/{project}/studies",
        headers={"Authorization": f"Bearer {bearer}"},
    )
    assert studies.status_code == 200, studies.text
    assert [s["00201208"]["Value"][0] for s in studies.json()] == [3]  # one study of 3

    listed = user.run("ls", project).stdout.splitlines()
    assert listed[0].split() == ["SUBJECT", "STUDIES"]
    subject = listed[1].split()[0]
    studies = user.run("ls", project, subject).stdout.splitlines()
    study = studies[1].split()[0]
    series = user.run("ls", project, subject, study).stdout.splitlines()
    assert series[0].split()[:2] == ["SERIES", "MODALITY"]
    assert len(series) == 2  # one series of three: fetched as one zip

    dest = tmp_path / "fetched"
    fetched = user.run("download", project, str(dest))
    files = sorted(dest.rglob("*.dcm"))
    assert len(files) == 3, fetched.stdout
    assert fetched.stdout.strip() == f"downloaded 3 instance(s) into {dest}"
    for path in files:
        ds = pydicom.dcmread(path)
        assert path.relative_to(dest).parts[:3] == (
            ds.PatientID,
            ds.StudyInstanceUID,
            ds.SeriesInstanceUID,
        )
        assert ds.PatientIdentityRemoved == "YES" and "7101" not in str(ds.PatientName)
    before = {path: path.read_bytes() for path in files}
    for path in files[1:]:
        path.unlink()  # two of a series missing: fetched as a zip again, the same bytes
    assert "downloaded 2 instance(s)" in user.run("download", project, str(dest)).stdout
    assert {path: path.read_bytes() for path in files} == before
    assert not list(dest.rglob("*.part")) and not list(dest.rglob("tmp*"))
    files[0].unlink()  # a second run fetches only what is missing
    resumed = user.run("download", project, str(dest), "--subject", files[0].parts[-4])
    assert "downloaded 1 instance(s)" in resumed.stdout and "there already" in resumed.stdout
    nothing = user.run("download", project, str(dest), "--subject", "nobody", code=2)
    assert "nothing in cli matches" in one_line(nothing)

    # a result that is not DICOM, attached to the study with what it was made from
    volumes = tmp_path / "volumes.csv"
    volumes.write_text("label,voxels\nlesion,32\n")
    source = pydicom.dcmread(files[1])
    attached = user.run(
        "results", "send", project, str(volumes), "--study", study,
        "--input", source.SOPInstanceUID, "--tool", "lesion-volumes", "--tool-version", "2.1",
    )  # fmt: skip
    assert attached.stdout.startswith(f"attached volumes.csv to {study} as file "), attached.stdout
    ident = attached.stdout.split(" as file ")[1].split()[0]
    listed = user.run("results", "ls", project, "--study", study).stdout
    assert ident in listed and "lesion-volumes 2.1" in listed, listed
    back = tmp_path / "back"
    back.mkdir()
    fetched_file = user.run("results", "download", project, ident, str(back))
    assert (back / "volumes.csv").read_text() == volumes.read_text(), fetched_file.stdout
    dicom = user.run("results", "send", project, str(files[1]), code=2)
    assert "is DICOM: send it with giftcloud send" in one_line(dicom)
    elsewhere = user.run("results", "send", project, str(volumes), "--study", "1.2.3", code=2)
    assert "no study 1.2.3" in one_line(elsewhere)


def test_ctrl_c_says_how_to_resume_and_a_second_run_sends_the_rest(
    deployment: Deployment, tmp_path: Path
) -> None:
    deployment.create_project("cli-resume")
    user = User(tmp_path)
    user.run("login", deployment.url, "--username", "admin", stdin=PASSWORD + "\n")
    folder = tmp_path / "many"
    folder.mkdir()
    for i, data in enumerate(distinct_instances(400, "7102")):
        (folder / f"{i:04d}.dcm").write_bytes(data)
    command = [str(VENV_BIN / "giftcloud"), "send", "--project", "cli-resume", "--batch", "1"]
    process = subprocess.Popen(
        [*command, str(folder)],
        env=user.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    headers = deployment.token()
    wait_for(
        lambda: deployment.instance_count("cli-resume", headers) > 0 or process.poll() is not None,
        timeout=120,
        what="the first instances archived",
    )
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert "Traceback" not in out + err
    assert process.returncode == 130, out + err
    assert "run the same command again to send the rest" in out
    first = int(out.split("interrupted: ")[1].split(" sent so far")[0])
    assert 0 < first < 400, out

    rest = user.run("send", "--project", "cli-resume", str(folder))
    summary = rest.stdout.splitlines()[-1]
    assert summary.startswith("400 file(s): "), summary
    assert "0 refused" in summary and "not sent again" in summary, summary
    wait_for(
        lambda: deployment.instance_count("cli-resume", headers) == 400,
        timeout=120,
        what="400 instances, each once",
    )
    time.sleep(1)
    assert deployment.instance_count("cli-resume", headers) == 400


def test_an_admin_makes_a_project_an_account_and_a_member(
    deployment: Deployment, tmp_path: Path
) -> None:
    admin = User(tmp_path / "admin")
    admin.run("login", deployment.url, "--username", "admin", stdin=PASSWORD + "\n")
    made = admin.run("project", "create", "cli-team", "--title", "A team")
    assert made.stdout.startswith("created project cli-team; you own it")
    assert ["cli-team", "owner", "A", "team"] in [
        line.split() for line in admin.run("projects").stdout.splitlines()
    ]
    added = admin.run("user", "add", "alice", "--email", "alice@example.org")
    token = added.stdout.split("?token=")[1].split()[0]
    reset = httpx.post(
        f"{deployment.url}/auth/password-reset",
        json={"token": token, "new_password": "alice's long passphrase"},
    )
    assert reset.status_code == 204, reset.text
    admin.run("member", "add", "cli-team", "alice", "--role", "collaborator")
    listed = [line.split() for line in admin.run("member", "ls", "cli-team").stdout.splitlines()]
    assert ["alice", "collaborator"] in listed and ["admin", "owner"] in listed
    nobody = admin.run("member", "add", "cli-team", "nobody", code=2)
    assert "no account 'nobody'" in one_line(nobody)

    alice = User(tmp_path / "alice")
    alice.run("login", deployment.url, "--username", "alice", stdin="alice's long passphrase\n")
    assert ["cli-team", "collaborator", "A", "team"] in [
        line.split() for line in alice.run("projects").stdout.splitlines()
    ]
    file = tmp_path / "a.dcm"
    file.write_bytes(synthetic_instance())
    refused = alice.run("send", "--project", "cli-team", str(file), code=2)
    assert "sending to cli-team" in one_line(refused), refused.stderr
    admin.run("member", "remove", "cli-team", "alice")
    assert ["alice", "collaborator"] not in [
        line.split() for line in admin.run("member", "ls", "cli-team").stdout.splitlines()
    ]
    not_admin = alice.run("user", "add", "mallory", code=2)
    assert "adding mallory" in one_line(not_admin)


def test_a_script_sends_with_an_api_key(deployment: Deployment, tmp_path: Path) -> None:
    deployment.create_project("cli-key")
    made = httpx.post(
        f"{deployment.url}/auth/projects/cli-key/keys",
        json={"name": "nightly", "role": "member"},
        headers=deployment.token(),
    )
    assert made.status_code == 201, made.text
    for i, data in enumerate(distinct_instances(3, "7103")):
        (tmp_path / f"{i}.dcm").write_bytes(data)
    user = User(tmp_path / "home")
    sent = user.run(
        "send",
        "--url",
        deployment.url,
        "--project",
        "cli-key",
        str(tmp_path),
        env={"GIFTCLOUD_API_KEY": made.json()["key"]},
    )
    assert sent.stdout.splitlines()[-1] == (
        "3 file(s): 3 archived, 0 rejected after de-identification, 0 refused"
    )


def test_deidentify_here_first(deployment: Deployment, tmp_path: Path) -> None:
    """--deidentify (a one-person site): the local engine's result is what is sent, and the
    server takes it (tests/unit/test_send.py shows the bytes sent carry no identifier)."""
    deployment.create_project("cli-local")
    user = User(tmp_path / "home")
    user.run("login", deployment.url, "--username", "admin", stdin=PASSWORD + "\n")
    source = tmp_path / "source"
    source.mkdir()
    (source / "a.dcm").write_bytes(synthetic_instance(patient_id="MRN-LOCAL-1"))
    keys = tmp_path / "keys"
    sent = user.run(
        "send", "--project", "cli-local", "--deidentify", "--keys", str(keys), str(source)
    )
    assert sent.stdout.splitlines()[-1].startswith("1 file(s): 1 archived"), sent.stdout
    assert (keys / "cli-local.key").stat().st_mode & 0o777 == 0o600  # the local key store
    dest = tmp_path / "out"
    user.run("download", "cli-local", str(dest))
    (fetched,) = dest.rglob("*.dcm")
    data = fetched.read_bytes()
    assert b"MRN-LOCAL-1" not in data and b"Secret Lane" not in data

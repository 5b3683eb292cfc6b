"""DICOM query/retrieve at a hub (api's SCP: Patient and Study Root C-FIND, C-GET, C-MOVE) on
the five services, as viewers and workstations use it: dcmtk's findscu, getscu and movescu
from a registered AE title, pynetdicom with a user identity, and what 3D Slicer's DICOM
browser sends (C-GET with the storage contexts it takes in the SCP role). Each answers only
what the caller may read; everything is in the audit trail."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE, build_role, evt
from pynetdicom.presentation import StoragePresentationContexts
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    CTImageStorage,
    SegmentationStorage,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
)
from support.cli import User
from support.deployment import Deployment, deployed
from support.infra import Seaweed, dcmtk, free_port, wait_for
from support.results import ct_series

FINDSCU, GETSCU, MOVESCU, STORESCP = (
    dcmtk(t) for t in ("findscu", "getscu", "movescu", "storescp")
)
pytestmark = pytest.mark.skipif(
    None in (FINDSCU, GETSCU, MOVESCU, STORESCP),
    reason="dcmtk's findscu, getscu, movescu and storescp are not installed (apt-get install dcmtk)",
)
PROJECT, OTHER = "qr", "qr-other"
RITA = ("rita", "rita rides a blue bicycle")
SLICES = 3


@pytest.fixture(scope="module")
def hub(
    real_services: None, seaweed: Seaweed, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Deployment, int]]:
    logs = tmp_path_factory.mktemp("query-retrieve")
    port = free_port()
    with deployed(seaweed, logs, GIFTCLOUD_API__DIMSE_PORT=str(port)) as deployment:
        admin = deployment.token()
        for project in (PROJECT, OTHER):
            deployment.create_project(project)
            stored = deployment.stow(project, ct_series(SLICES, f"PID-{project}"), admin)
            assert stored.status_code == 200, stored.text
        deployment.add_person(RITA[0], RITA[1], PROJECT, "collaborator")
        for project in (PROJECT, OTHER):
            wait_for(
                lambda p=project: deployment.instance_count(p, admin) == SLICES,  # type: ignore[misc]
                timeout=120,
                what=f"{project}'s study archived",
            )
        yield deployment, port


def api_key(deployment: Deployment, person: tuple[str, str], project: str) -> str:
    made = httpx.post(
        f"{deployment.url}/auth/projects/{project}/keys",
        json={"name": "workstation", "role": "collaborator"},
        headers=deployment.token(*person),
    )
    assert made.status_code == 201, made.text
    return str(made.json()["key"])


def register(
    deployment: Deployment, person: tuple[str, str], title: str, key: str, port: int | None = None,
    host: str = "127.0.0.1",
) -> httpx.Response:  # fmt: skip
    return httpx.put(
        f"{deployment.url}/api/dimse/callers/{title}",
        json={"host": host, "port": port, "api_key": key},
        headers=deployment.token(*person),
    )


def dcmtk_tool(
    tool: str | None, port: int, calling: str, *args: str, out: Path | None = None
) -> subprocess.CompletedProcess[str]:
    assert tool is not None
    extra = ["-od", str(out)] if out is not None else []
    return subprocess.run(
        [tool, "-aet", calling, "-aec", "GIFTCLOUD", *extra, *args, "127.0.0.1", str(port)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def found(folder: Path) -> list[Dataset]:
    """The C-FIND responses findscu -X wrote (rsp0001.dcm, ...)."""
    return [pydicom.dcmread(f) for f in sorted(folder.glob("rsp*.dcm"))]


def wado(deployment: Deployment, project: str, study: str) -> dict[str, Dataset]:
    """The study's instances as WADO-RS gives them as stored, by SOP Instance UID."""
    from dicomweb_client.api import DICOMwebClient

    client = DICOMwebClient(url=f"{deployment.url}/dicomweb/{project}", headers=deployment.token())
    return {ds.SOPInstanceUID: ds for ds in client.retrieve_study(study)}


def test_a_registered_workstation_finds_gets_and_moves_only_what_its_key_reads(
    hub: tuple[Deployment, int], tmp_path: Path
) -> None:
    deployment, port = hub
    key = api_key(deployment, RITA, PROJECT)
    # the key must be the person's own; the AE title a DICOM one
    assert (
        register(deployment, ("admin", "admin-test-password"), "ADMIN_WS", key).status_code == 403
    )
    assert register(deployment, RITA, "RITA_WS", "gck_not_a_key").status_code == 400
    assert register(deployment, RITA, "A\\B", key).status_code == 400
    destination = free_port()
    made = register(deployment, RITA, "RITA_WS", key, port=destination)
    assert made.status_code == 200, made.text
    assert made.json()["username"] == "rita" and "api_key" not in made.text

    # C-FIND, Study Root, STUDY level: rita's project's study only
    studies = tmp_path / "studies"
    studies.mkdir()
    answered = dcmtk_tool(
        FINDSCU, port, "RITA_WS", "-S", "-X",
        "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID", "-k", "PatientID",
        "-k", "PatientName", "-k", "StudyDate", "-k", "ModalitiesInStudy",
        "-k", "NumberOfStudyRelatedInstances", "-k", "AccessionNumber",
        out=studies,
    )  # fmt: skip
    assert answered.returncode == 0, answered.stderr
    [study] = found(studies)
    expected = httpx.get(
        f"{deployment.url}/dicomweb/{PROJECT}/studies", headers=deployment.token()
    ).json()[0]
    assert study.StudyInstanceUID == expected["0020000D"]["Value"][0]
    assert study.PatientID == expected["00100020"]["Value"][0] != "PID-qr"  # de-identified
    assert study.ModalitiesInStudy == "CT" and int(study.NumberOfStudyRelatedInstances) == SLICES
    assert study.QueryRetrieveLevel == "STUDY" and study.AccessionNumber == ""

    # Patient Root, PATIENT level; SERIES and IMAGE levels under the study
    patients = tmp_path / "patients"
    patients.mkdir()
    dcmtk_tool(
        FINDSCU, port, "RITA_WS", "-P", "-X", "-k", "QueryRetrieveLevel=PATIENT",
        "-k", "PatientID", "-k", "PatientName", out=patients,
    )  # fmt: skip
    assert [p.PatientID for p in found(patients)] == [study.PatientID]
    images = tmp_path / "images"
    images.mkdir()
    dcmtk_tool(
        FINDSCU, port, "RITA_WS", "-S", "-X", "-k", "QueryRetrieveLevel=IMAGE",
        "-k", f"StudyInstanceUID={study.StudyInstanceUID}", "-k", "SOPInstanceUID",
        "-k", "InstanceNumber", out=images,
    )  # fmt: skip
    assert sorted(int(i.InstanceNumber) for i in found(images)) == [1, 2, 3]

    # C-GET: the study's instances, equal to WADO-RS's
    got = tmp_path / "got"
    got.mkdir()
    fetched = dcmtk_tool(
        GETSCU, port, "RITA_WS", "-S", "-k", "QueryRetrieveLevel=STUDY",
        "-k", f"StudyInstanceUID={study.StudyInstanceUID}", out=got,
    )  # fmt: skip
    assert fetched.returncode == 0, fetched.stderr
    by_wado = wado(deployment, PROJECT, study.StudyInstanceUID)
    received = {ds.SOPInstanceUID: ds for ds in map(pydicom.dcmread, got.iterdir())}
    assert received.keys() == by_wado.keys() and len(received) == SLICES
    for uid, ds in received.items():
        assert ds.PixelData == by_wado[uid].PixelData and ds.PatientID == study.PatientID

    # C-MOVE: to rita's registered workstation; never to an AE title not hers
    moved = tmp_path / "moved"
    moved.mkdir()
    listener = subprocess.Popen(
        [str(STORESCP), "-aet", "RITA_WS", "-od", str(moved), str(destination)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        sent = dcmtk_tool(
            MOVESCU, port, "RITA_WS", "-S", "-aem", "RITA_WS", "-k", "QueryRetrieveLevel=SERIES",
            "-k", f"StudyInstanceUID={study.StudyInstanceUID}",
            "-k", f"SeriesInstanceUID={next(iter(by_wado.values())).SeriesInstanceUID}",
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        wait_for(lambda: len(list(moved.iterdir())) == SLICES, timeout=30, what="3 moved")
        elsewhere = dcmtk_tool(
            MOVESCU, port, "RITA_WS", "-S", "-aem", "ELSEWHERE", "-k", "QueryRetrieveLevel=STUDY",
            "-k", f"StudyInstanceUID={study.StudyInstanceUID}",
        )  # fmt: skip
        assert "Refused: MoveDestinationUnknown" in elsewhere.stderr, elsewhere
    finally:
        listener.terminate()
        listener.wait(10)

    # every search and retrieval in the project's audit trail, as rita's key
    trail = httpx.get(
        f"{deployment.url}/api/projects/{PROJECT}/audit", params={"action": "dimse."},
        headers=deployment.token(),
    ).json()  # fmt: skip
    actions = {entry["action"] for entry in trail}
    assert {"dimse.find", "dimse.get", "dimse.move"} <= actions, actions
    assert all("of rita" in entry["actor"] for entry in trail), trail


def test_an_unknown_or_misplaced_ae_title_is_rejected(hub: tuple[Deployment, int]) -> None:
    deployment, port = hub
    key = api_key(deployment, RITA, PROJECT)
    assert register(deployment, RITA, "FAR_AWAY", key, host="10.9.8.7").status_code == 200
    for calling in ("STRANGER", "FAR_AWAY"):
        answer = dcmtk_tool(FINDSCU, port, calling, "-S", "-k", "QueryRetrieveLevel=STUDY")
        assert answer.returncode != 0
        assert "Association Rejected" in answer.stderr + answer.stdout, answer
    trail = httpx.get(
        f"{deployment.url}/api/audit", params={"action": "dimse.associate"},
        headers=deployment.token(),
    ).json()  # fmt: skip
    reasons = {entry["detail"] for entry in trail if entry["outcome"] == "denied"}
    assert "AE title 'STRANGER' is not registered here" in reasons, reasons
    assert "AE title FAR_AWAY is registered for 10.9.8.7, not 127.0.0.1" in reasons, reasons


def test_the_command_registers_a_workstation_and_takes_it_away(
    hub: tuple[Deployment, int], tmp_path: Path
) -> None:
    """``giftcloud workstation add`` makes the key (one project, bound to the workstation's
    address) and registers the AE title; a failed registration takes the key back;
    ``remove`` unregisters the title and revokes its key."""
    deployment, port = hub
    user = User(tmp_path)
    env = {
        "GIFTCLOUD_USERNAME": RITA[0],
        "GIFTCLOUD_PASSWORD": RITA[1],
        "GIFTCLOUD_URL": deployment.url,
    }
    keys_url = f"{deployment.url}/auth/projects/{PROJECT}/keys"

    def keys_named(name: str) -> list[dict[str, Any]]:
        listed = httpx.get(keys_url, headers=deployment.token(*RITA)).json()
        return [key for key in listed if key["name"] == name]

    said = user.run(
        "workstation", "add", "RITA_CLI", "--project", PROJECT, "--host", "127.0.0.1", env=env
    ).stdout
    assert "RITA_CLI at 127.0.0.1 queries and retrieves qr as collaborator" in said, said
    assert "no C-MOVE to it" in said, said
    [key] = keys_named("DICOM workstation RITA_CLI")
    assert key["networks"] == ["127.0.0.1/32"] and key["grants"] == {PROJECT: "collaborator"}
    listed = user.run("workstation", "ls", env=env).stdout
    assert any(
        line.split()[:3] == ["RITA_CLI", "rita", "127.0.0.1"] for line in listed.splitlines()
    )
    answered = dcmtk_tool(FINDSCU, port, "RITA_CLI", "-S", "-k", "QueryRetrieveLevel=STUDY")
    assert answered.returncode == 0 and "Association Rejected" not in answered.stderr, answered

    # a title the hub refuses: one line with its reason, and the key made for it taken back
    bad = user.run(
        "workstation", "add", "A\\B", "--project", PROJECT, "--host", "127.0.0.1", env=env, code=2
    )
    assert "registering A\\B: " in bad.stderr and "is not an AE title" in bad.stderr, bad
    assert len(bad.stderr.strip().splitlines()) == 1
    assert all(k["revoked_at"] for k in keys_named("DICOM workstation A\\B")), "a key left behind"
    # a project she has no role on: nothing made
    user.run(
        "workstation", "add", "RITA_X", "--project", OTHER, "--host", "127.0.0.1", env=env, code=2
    )
    assert "RITA_X" not in user.run("workstation", "ls", env=env).stdout

    gone = user.run("workstation", "remove", "RITA_CLI", env=env).stdout
    assert "RITA_CLI is no longer registered" in gone and "1 key(s) made for it revoked" in gone
    [key] = keys_named("DICOM workstation RITA_CLI")
    assert key["revoked_at"] is not None
    refused = dcmtk_tool(FINDSCU, port, "RITA_CLI", "-S", "-k", "QueryRetrieveLevel=STUDY")
    assert "Association Rejected" in refused.stderr + refused.stdout, refused
    again = user.run("workstation", "remove", "RITA_CLI", env=env, code=2)
    assert "no AE title 'RITA_CLI' of yours" in again.stderr, again


def test_a_user_identity_with_an_api_key_acts_as_its_maker(hub: tuple[Deployment, int]) -> None:
    deployment, port = hub
    key = api_key(deployment, RITA, PROJECT)

    def find(username: str, passcode: str) -> list[Dataset] | None:
        ae = AE(ae_title="PYNETDICOM")
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
        assoc = ae.associate(
            "127.0.0.1", port, ae_title="GIFTCLOUD",
            ext_neg=[_identity(username, passcode)],
        )  # fmt: skip
        if not assoc.is_established:
            return None
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = ""
        query.PatientID = ""
        try:
            return [
                identifier
                for status, identifier in assoc.send_c_find(
                    query, StudyRootQueryRetrieveInformationModelFind
                )
                if status and status.Status == 0xFF00
            ]
        finally:
            assoc.release()

    answers = find("rita", key)
    assert answers is not None and len(answers) == 1
    assert find("rita", RITA[1]) is None  # a password is never taken
    assert find("admin", key) is None  # nor someone else's key
    assert find("rita", key[:-4] + "xxxx") is None


def test_what_3d_slicer_sends_a_c_get_with_storage_in_the_scp_role(
    hub: tuple[Deployment, int],
) -> None:
    """ctkDICOMRetrieve (3D Slicer's DICOM browser): Study Root C-GET at SERIES level,
    proposing the storage SOP classes with SCP/SCU role selection (SCP role), receiving on
    the same association."""
    deployment, port = hub
    key = api_key(deployment, RITA, PROJECT)
    assert register(deployment, RITA, "SLICER", key).status_code == 200
    study = httpx.get(
        f"{deployment.url}/dicomweb/{PROJECT}/series", headers=deployment.token()
    ).json()[0]
    received: list[Dataset] = []

    def stored(event: evt.Event) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        received.append(ds)
        return 0x0000

    ae = AE(ae_title="SLICER")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    roles = []
    for context in StoragePresentationContexts[:120]:
        ae.add_requested_context(context.abstract_syntax)
        roles.append(build_role(context.abstract_syntax, scp_role=True))
    for sop_class in (CTImageStorage, SegmentationStorage):
        if sop_class not in [c.abstract_syntax for c in StoragePresentationContexts[:120]]:
            ae.add_requested_context(sop_class)
            roles.append(build_role(sop_class, scp_role=True))
    assoc = ae.associate(
        "127.0.0.1", port, ae_title="GIFTCLOUD", ext_neg=roles,
        evt_handlers=[(evt.EVT_C_STORE, stored)],
    )  # fmt: skip
    assert assoc.is_established
    query = Dataset()
    query.QueryRetrieveLevel = "SERIES"
    query.StudyInstanceUID = study["0020000D"]["Value"][0]
    query.SeriesInstanceUID = study["0020000E"]["Value"][0]
    statuses = [
        s.Status for s, _ in assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet) if s
    ]
    assoc.release()
    assert statuses[-1] == 0x0000, [hex(s) for s in statuses]
    assert len(received) == SLICES
    assert {ds.SeriesInstanceUID for ds in received} == {query.SeriesInstanceUID}
    assert all(ds.pixel_array.shape == (16, 16) for ds in received)


def _identity(username: str, passcode: str) -> object:
    from pynetdicom.pdu_primitives import UserIdentityNegotiation

    item = UserIdentityNegotiation()
    item.user_identity_type = 2
    item.primary_field = username.encode()
    item.secondary_field = passcode.encode()
    return item

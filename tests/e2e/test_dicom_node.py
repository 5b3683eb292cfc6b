"""Ingest's DICOM node against dcmtk's echoscu and storescu (real DICOM peers), on the
five services as separate processes: routing by called AE title, who may send, the usual
transfer syntaxes, several associations at once, kill -9 in the middle of an association."""

from __future__ import annotations

import io
import re
import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pydicom
import pytest
from pydicom.uid import generate_uid
from support.deployment import Deployment, deployed
from support.dicom_files import distinct_instances, pydicom_file
from support.infra import Seaweed, dcmtk, free_port, wait_for

STORESCU, ECHOSCU, DCMCJPEG = dcmtk("storescu"), dcmtk("echoscu"), dcmtk("dcmcjpeg")
pytestmark = pytest.mark.skipif(
    STORESCU is None or ECHOSCU is None or DCMCJPEG is None,
    reason="dcmtk's storescu, echoscu and dcmcjpeg are not installed (apt-get install dcmtk)",
)
TOOLS = {"storescu": STORESCU, "echoscu": ECHOSCU}

PROJECT, AE = "dicomnode", "GC_RESEARCH"

#: one file of each transfer syntax the node must take (pydicom's test data), and the
#: storescu option that proposes that syntax (with the uncompressed ones)
SYNTAXES = {
    "1.2.840.10008.1.2.1": ("CT_small.dcm", "-xe"),  # explicit VR little endian
    "1.2.840.10008.1.2.1.99": ("image_dfl.dcm", "-xd"),  # deflated
    "1.2.840.10008.1.2.5": ("MR_small_RLE.dcm", "-xr"),  # RLE
    "1.2.840.10008.1.2.4.50": ("SC_rgb_jpeg_dcmtk.dcm", "-xy"),  # JPEG baseline
    "1.2.840.10008.1.2.4.70": ("", "-xs"),  # JPEG lossless SV1: dcmcjpeg makes it
    "1.2.840.10008.1.2.4.80": ("MR_small_jpeg_ls_lossless.dcm", "-xt"),  # JPEG-LS lossless
    "1.2.840.10008.1.2.4.90": ("MR_small_jp2klossless.dcm", "-xv"),  # JPEG 2000 lossless
}


@pytest.fixture(scope="module")
def node(
    real_services: None, seaweed: Seaweed, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Deployment, int]]:
    logs = tmp_path_factory.mktemp("dicom-node")
    port = free_port()
    with deployed(
        seaweed,
        logs,
        GIFTCLOUD_INGEST__DICOM_PORT=str(port),
        GIFTCLOUD_INGEST__DICOM_HOST="127.0.0.1",
        GIFTCLOUD_INGEST__SOLE_INSTANCE="true",  # a restarted ingest knows it was the only one
    ) as deployment:
        deployment.create_project(PROJECT)
        set_route(deployment, PROJECT, AE)
        yield deployment, port


def set_route(
    deployment: Deployment,
    project: str,
    ae_title: str,
    calling: list[str] | None = None,
    networks: list[str] | None = None,
) -> httpx.Response:
    return httpx.put(
        f"{deployment.url}/ingest/{project}/dicom",
        json={"ae_title": ae_title, "calling_ae_titles": calling or [], "networks": networks or []},
        headers=deployment.token(),
    )


def scu(
    tool: str, port: int, called: str, *args: str, calling: str = "STORESCU", timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TOOLS[tool]), "-aet", calling, "-aec", called, "127.0.0.1", str(port), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def ingest_log(deployment: Deployment) -> str:
    return Path(deployment.services["ingest"].log_path).read_text()


def dicom_uploads(deployment: Deployment) -> list[dict[str, object]]:
    response = httpx.get(
        f"{deployment.url}/ingest/{PROJECT}/uploads", headers=deployment.token(), timeout=30
    )
    response.raise_for_status()
    return [u for u in response.json() if str(u["source"]).startswith("dicom:")]


def upload_status(deployment: Deployment, upload_id: str) -> dict[str, object]:
    response = httpx.get(
        f"{deployment.url}/ingest/{PROJECT}/uploads/{upload_id}",
        headers=deployment.token(),
        timeout=30,
    )
    response.raise_for_status()
    result: dict[str, object] = response.json()
    return result


def settled(deployment: Deployment, upload_id: str, timeout: float = 180) -> dict[str, object]:
    def done() -> dict[str, object] | None:
        status = upload_status(deployment, upload_id)
        return status if status["state"] == "received" and status["pending"] == 0 else None

    result: dict[str, object] = wait_for(done, timeout=timeout, what=f"upload {upload_id}")
    return result


def instance_numbers(deployment: Deployment, patient_prefix: str = "") -> list[int]:
    """InstanceNumber of every archived instance of the project (QIDO-RS, all pages)."""
    numbers: list[int] = []
    offset = 0
    while True:
        response = httpx.get(
            f"{deployment.url}/dicomweb/{PROJECT}/instances",
            params={"includefield": "InstanceNumber", "limit": 1000, "offset": offset},
            headers=deployment.token(),
            timeout=60,
        )
        response.raise_for_status()
        page = response.json()
        numbers += [
            int(item["00200013"]["Value"][0])
            for item in page
            if item.get("00200013", {}).get("Value")
        ]
        if len(page) < 1000:
            return numbers
        offset += 1000


def numbered(folder: Path, count: int, tag: str, first: int = 1) -> list[Path]:
    """``count`` distinct instances in ``folder``, each with its own InstanceNumber."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, data in enumerate(distinct_instances(count, tag)):
        ds = pydicom.dcmread(io.BytesIO(data))
        ds.InstanceNumber = first + i
        path = folder / f"{first + i:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


# --- association: C-ECHO and who may send ----------------------------------------------


def test_echo_on_the_project_and_the_node_titles(node: tuple[Deployment, int]) -> None:
    deployment, port = node
    assert scu("echoscu", port, AE).returncode == 0
    assert scu("echoscu", port, "GIFTCLOUD").returncode == 0  # the node's own title


def test_unknown_called_ae_title_is_rejected_with_the_reason(node: tuple[Deployment, int]) -> None:
    deployment, port = node
    result = scu("echoscu", port, "NO_SUCH_AE")
    assert result.returncode != 0
    assert "Called AE Title Not Recognized" in result.stdout + result.stderr
    assert "called AE title 'NO_SUCH_AE' not recognised" in ingest_log(deployment)


def test_only_the_allowed_calling_titles_and_networks_may_send(
    node: tuple[Deployment, int], tmp_path: Path
) -> None:
    deployment, port = node
    try:
        assert set_route(deployment, PROJECT, AE, calling=["MODALITY1"]).status_code == 200
        refused = scu("echoscu", port, AE, calling="INTRUDER")
        assert refused.returncode != 0
        assert "Calling AE Title Not Recognized" in refused.stdout + refused.stderr
        assert "calling AE title 'INTRUDER' may not send to 'GC_RESEARCH'" in ingest_log(deployment)
        # nothing of a refused association is stored
        before = len(dicom_uploads(deployment))
        files = numbered(tmp_path / "refused", 2, "71", first=90_001)
        assert scu("storescu", port, AE, *map(str, files), calling="INTRUDER").returncode != 0
        assert len(dicom_uploads(deployment)) == before
        assert scu("echoscu", port, AE, calling="MODALITY1").returncode == 0

        # the route's networks: loopback is not in 10.0.0.0/8
        assert set_route(deployment, PROJECT, AE, networks=["10.0.0.0/8"]).status_code == 200
        refused = scu("echoscu", port, AE)
        assert refused.returncode != 0
        assert "127.0.0.1 is not among the networks the AE title 'GC_RESEARCH' allows" in (
            ingest_log(deployment)
        )
        assert set_route(deployment, PROJECT, AE, networks=["127.0.0.0/8"]).status_code == 200
        assert scu("echoscu", port, AE).returncode == 0

        # a route taken away: its title is no longer recognised
        headers = deployment.token()
        assert (
            httpx.delete(f"{deployment.url}/ingest/{PROJECT}/dicom", headers=headers).status_code
            == 204
        )
        gone = scu("echoscu", port, AE)
        assert "Called AE Title Not Recognized" in gone.stdout + gone.stderr
    finally:
        assert set_route(deployment, PROJECT, AE).status_code == 200
    assert scu("echoscu", port, AE).returncode == 0


def test_the_route_is_validated_and_unique(node: tuple[Deployment, int]) -> None:
    deployment, _ = node
    for bad, why in [
        ("BACK\\SLASH", "backslash"),
        ("A" * 17, "at most 16"),
        ("TAB\tAE", "control"),
        ("   ", "empty"),
    ]:
        response = set_route(deployment, PROJECT, bad)
        assert response.status_code in (400, 422), (bad, response.text)
        assert why in response.text, response.text
    bad_network = set_route(deployment, PROJECT, AE, networks=["10.1.2.3/8"])
    assert bad_network.status_code == 400 and "CIDR" in bad_network.text
    deployment.create_project("dicomother")
    taken = set_route(deployment, "dicomother", AE)
    assert taken.status_code == 409 and "another project" in taken.text
    assert httpx.get(f"{deployment.url}/ingest/{PROJECT}/dicom").status_code == 401
    route = httpx.get(f"{deployment.url}/ingest/{PROJECT}/dicom", headers=deployment.token())
    assert route.json()["ae_title"] == AE


# --- C-STORE ------------------------------------------------------------------------------


def test_storescu_sends_every_usual_transfer_syntax(
    node: tuple[Deployment, int], tmp_path: Path
) -> None:
    """One association per syntax (storescu proposes one compressed syntax at a time): each
    file goes over the wire as it is, not converted, and is archived."""
    deployment, port = node
    for syntax, (name, option) in SYNTAXES.items():
        if name:
            source = pydicom_file(name)
        else:
            source = tmp_path / "jpeg-lossless.dcm"
            subprocess.run(
                [str(DCMCJPEG), "+e1", str(pydicom_file("CT_small.dcm")), str(source)], check=True
            )
        ds = pydicom.dcmread(source)
        assert ds.file_meta.TransferSyntaxUID == syntax, name
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.BurnedInAnnotation = "NO"  # else the profile refuses secondary captures
        path = tmp_path / f"{option}.dcm"
        ds.save_as(path, enforce_file_format=True)
        before = {str(u["id"]) for u in dicom_uploads(deployment)}
        result = scu("storescu", port, AE, "-v", option, str(path))
        log = result.stdout + result.stderr
        assert result.returncode == 0, log
        converted = re.findall(r"Converting transfer syntax: (.+) -> (.+)", log)
        assert all(a == b for a, b in converted), log  # sent in its own syntax
        assert "Received Store Response (Success)" in log, log
        new = [u for u in dicom_uploads(deployment) if str(u["id"]) not in before]
        assert len(new) == 1  # one association, one upload, named by its sender
        assert new[0]["source"] == "dicom:STORESCU@127.0.0.1"
        status = settled(deployment, str(new[0]["id"]))
        assert (status["accepted"], status["refused"], status["archived"]) == (1, 0, 1), (
            syntax,
            status,
        )


def test_a_resend_in_another_syntax_keeps_the_first_copy(
    node: tuple[Deployment, int], tmp_path: Path
) -> None:
    """The same instance sent implicit VR, then explicit (storescu converts it as a sender
    would): the first copy stays, and the metadata, WADO-RS negotiation and a zip agree."""
    deployment, port = node
    ds = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.InstanceNumber = 90_001
    path = tmp_path / "resent.dcm"
    ds.save_as(path, enforce_file_format=True)
    for option in ("-xi", "-xe"):  # implicit first, then explicit
        before = {str(u["id"]) for u in dicom_uploads(deployment)}
        result = scu("storescu", port, AE, "-v", option, str(path))
        assert "Received Store Response (Success)" in result.stdout + result.stderr
        [new] = [u for u in dicom_uploads(deployment) if str(u["id"]) not in before]
        assert settled(deployment, str(new["id"]))["archived"] == 1
    headers = deployment.token()
    found = httpx.get(
        f"{deployment.url}/dicomweb/{PROJECT}/instances",
        params={"InstanceNumber": "90001"},
        headers=headers,
        timeout=30,
    ).json()
    [item] = found
    study, series, sop = (item[t]["Value"][0] for t in ("0020000D", "0020000E", "00080018"))
    base = f"{deployment.url}/dicomweb/{PROJECT}/studies/{study}/series/{series}/instances/{sop}"
    metadata = httpx.get(f"{base}/metadata", headers=headers, timeout=30).json()
    assert metadata[0]["00020010"]["Value"] == ["1.2.840.10008.1.2"]
    accept = "application/dicom; transfer-syntax="
    stored = httpx.get(base, headers={**headers, "Accept": accept + "*"}, timeout=30)
    assert pydicom.dcmread(io.BytesIO(stored.content)).file_meta.TransferSyntaxUID == (
        "1.2.840.10008.1.2"
    )
    # asked in Explicit VR Little Endian: transcoded, the same pixels (PS3.18 §8.7.3)
    other = httpx.get(base, headers={**headers, "Accept": accept + "1.2.840.10008.1.2.1"})
    explicit = pydicom.dcmread(io.BytesIO(other.content))
    assert explicit.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert explicit.PixelData == pydicom.dcmread(io.BytesIO(stored.content)).PixelData
    zipped = httpx.get(
        f"{deployment.url}/api/projects/{PROJECT}/download",
        params={"series": series},
        headers=headers,
        timeout=60,
    )
    assert int(zipped.headers["Content-Length"]) == len(zipped.content)
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as archive:
        [name] = [n for n in archive.namelist() if n.endswith(f"/{sop}.dcm")]
        assert archive.read(name) == stored.content
        for other_name in archive.namelist():  # every entry whole
            pydicom.dcmread(io.BytesIO(archive.read(other_name)))


def test_several_associations_at_once_are_deidentified_and_archived(
    node: tuple[Deployment, int], tmp_path: Path
) -> None:
    deployment, port = node
    folders = []
    for n in range(4):
        files = numbered(tmp_path / f"a{n}", 15, f"72{n}", first=10_000 + 100 * n)
        folders.append(files)
    before = {str(u["id"]) for u in dicom_uploads(deployment)}
    senders = [  # each sends a folder, as a modality or PACS does (+sd: scan it)
        subprocess.Popen(
            [
                *(str(STORESCU), "-aet", f"MODALITY{n}", "-aec", AE, "+sd"),
                *("127.0.0.1", str(port), str(tmp_path / f"a{n}")),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for n in range(len(folders))
    ]
    outputs = [s.communicate(timeout=300)[0] for s in senders]
    assert all(s.returncode == 0 for s in senders), outputs
    new = [u for u in dicom_uploads(deployment) if str(u["id"]) not in before]
    assert sorted(str(u["source"]) for u in new) == [
        f"dicom:MODALITY{n}@127.0.0.1" for n in range(4)
    ]
    for upload in new:
        assert settled(deployment, str(upload["id"]))["archived"] == 15
    expected = {10_000 + 100 * n + i for n in range(4) for i in range(15)}
    assert expected <= set(instance_numbers(deployment))
    # de-identified: no planted name, ID or address reached the archive's catalogue
    studies = httpx.get(
        f"{deployment.url}/dicomweb/{PROJECT}/studies",
        params={"includefield": "all", "limit": 1000},
        headers=deployment.token(),
    ).text
    for planted in ("Patient^72", "720-", "Secret Lane", "St Leaky", "ACC-72"):
        assert planted not in studies


def test_a_file_that_is_not_whole_is_refused_with_the_reason(
    node: tuple[Deployment, int], tmp_path: Path
) -> None:
    """A data set without its Study Instance UID reaches the SCP (storescu sends it): refused
    with 0xA900 (does not match its SOP class) and the reason in ingest's log; the upload
    counts it refused, nothing of it is stored."""
    deployment, port = node
    [path] = numbered(tmp_path / "broken", 1, "73", first=80_000)
    ds = pydicom.dcmread(path)
    del ds.StudyInstanceUID
    ds.save_as(path, enforce_file_format=True)
    before = {str(u["id"]) for u in dicom_uploads(deployment)}
    result = scu("storescu", port, AE, "-v", str(path), calling="BROKEN")
    text = result.stdout + result.stderr
    assert "Received Store Response (Success)" not in text, text
    assert "Received Store Response (Error: DataSetDoesNotMatchSOPClass)" in text, text
    assert "missing required attribute(s) StudyInstanceUID" in ingest_log(deployment)
    [upload] = [u for u in dicom_uploads(deployment) if str(u["id"]) not in before]
    status = settled(deployment, str(upload["id"]))
    assert (status["accepted"], status["refused"], status["archived"]) == (0, 1, 0), status
    [refusal] = status["refusals"]  # type: ignore[misc]
    assert refusal["index"] == 0 and "StudyInstanceUID" in refusal["reason"], refusal
    assert 80_000 not in instance_numbers(deployment)


def test_a_profile_refusal_reads_as_an_error_dcmtk_knows_and_is_listed_with_its_reason(
    node: tuple[Deployment, int], tmp_path: Path
) -> None:
    """An ultrasound without BurnedInAnnotation between two good files, sent with --no-halt:
    a Cxxx error (dcmtk: "Cannot understand", not "Unknown Status") whose ErrorComment keeps
    the decisive words; the good files are archived; the upload names the refused one by its
    place and SOP Instance UID, with the reason in full and its next step."""
    deployment, port = node
    paths = numbered(tmp_path / "mixed", 3, "76", first=81_000)
    ds = pydicom.dcmread(paths[1])
    ds.Modality = "US"
    if "BurnedInAnnotation" in ds:
        del ds.BurnedInAnnotation
    ds.save_as(paths[1], enforce_file_format=True)
    before = {str(u["id"]) for u in dicom_uploads(deployment)}
    result = scu("storescu", port, AE, "-v", "--no-halt", *map(str, paths), calling="MIXED")
    text = result.stdout + result.stderr
    assert "Received Store Response (Error: CannotUnderstand)" in text, text
    assert "Unknown Status" not in text, text
    [upload] = [u for u in dicom_uploads(deployment) if str(u["id"]) not in before]
    status = settled(deployment, str(upload["id"]))
    assert (status["accepted"], status["refused"], status["archived"]) == (2, 1, 2), status
    [refusal] = status["refusals"]  # type: ignore[misc]
    assert refusal["index"] == 1 and refusal["sop_uid"] == ds.SOPInstanceUID, refusal
    assert refusal["reason"].startswith("the image may carry burned-in text (modality US")
    assert "Next step: a project owner attests" in refusal["reason"], refusal


def test_kill_9_in_the_middle_of_an_association_loses_nothing_acknowledged(
    node: tuple[Deployment, int], tmp_path: Path
) -> None:
    deployment, port = node
    files = numbered(tmp_path / "kill", 300, "74", first=50_000)
    sender = subprocess.Popen(
        [str(STORESCU), "-v", "-aet", "KILLTEST", "-aec", AE, "127.0.0.1", str(port)]
        + [str(p) for p in files],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    # killed once storescu itself has read 40 answers (an upload counts an instance as it is
    # settled, a moment before the answer is written: its count is not what storescu saw)
    assert sender.stdout is not None
    read: list[str] = []
    deadline = time.monotonic() + 120
    while len(acknowledged_files("".join(read))) < 40:
        line = sender.stdout.readline()
        assert line and time.monotonic() < deadline, "".join(read)[-2000:]
        read.append(line)
    deployment.services["ingest"].kill()
    output = "".join(read) + sender.communicate(timeout=120)[0]
    deployment.services["ingest"].start()

    acknowledged = acknowledged_files(output)
    assert 40 <= len(acknowledged) < 300, output[-2000:]
    numbers = {int(Path(name).stem) for name in acknowledged}

    def interrupted() -> dict[str, object] | None:  # not "receiving" for ever
        [upload] = [
            u for u in dicom_uploads(deployment) if u["source"] == "dicom:KILLTEST@127.0.0.1"
        ]
        return upload if upload["state"] == "interrupted" else None

    cut = wait_for(interrupted, timeout=60, what="the cut-off upload marked interrupted")
    assert int(str(cut["accepted"])) >= len(acknowledged)  # what was acknowledged, at least

    def archived() -> bool:
        return numbers <= set(instance_numbers(deployment))

    wait_for(archived, timeout=180, what="every acknowledged instance archived")
    # the whole folder again: what was archived before is not archived twice
    again = scu("storescu", port, AE, *map(str, files), calling="KILLTEST2")
    assert again.returncode == 0, again.stdout[-2000:]
    wait_for(
        lambda: {50_000 + i for i in range(300)} <= set(instance_numbers(deployment)),
        timeout=180,
        what="all 300 archived",
    )
    found = [n for n in instance_numbers(deployment) if 50_000 <= n < 50_300]
    assert len(found) == 300 == len(set(found))


def acknowledged_files(storescu_verbose: str) -> list[str]:
    """The files storescu -v saw answered with Success, in order."""
    done, current = [], None
    for line in storescu_verbose.splitlines():
        if "Sending file:" in line:
            current = line.split("Sending file:", 1)[1].strip()
        elif "Received Store Response (Success)" in line and current is not None:
            done.append(current)
            current = None
    return done

"""Results back to the clinic, end to end: a site and a hub (the five services each, on the
real servers) and Debian's Orthanc as the hospital's PACS.

Images are de-identified at the site and forwarded; at the hub a segmentation made with
highdicom on the hub's copy and a CSV file are attached, and a segmentation of a subject
another site sent; the site pulls them (its ingest killed with -9 during the pull), refuses
the stranger's, holds the rest for a reidentifier; a collaborator cannot approve; nothing
reaches the PACS before approval; once approved the PACS holds one segmentation whose
patient and references are the hospital's originals, and its rendering as secondary
captures (the node asks for them), read back from Orthanc; every decision and delivery is
in the site's audit trail."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from giftcloud_deid import Deidentifier, ProjectKeys
from giftcloud_deid.vault import generate_keypair
from support.browser import Tab, launched
from support.cli import User, one_line
from support.deployment import Deployment
from support.deployment import site_and_hub as paired
from support.infra import Orthanc, Seaweed, wait_for
from support.results import ct_series, segmentation

PROJECT = "placenta"
RITA = ("rita", "rita re-identifies with care")
CARL = ("carl", "carl collaborates from afar")
EXTRA_FILES = 40

pytestmark = pytest.mark.skipif(
    not Path("/usr/bin/dciodvfy").exists(), reason="dicom3tools (dciodvfy) is not installed"
)


@pytest.fixture(scope="module")
def hospital(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    pacs = Orthanc(tmp_path_factory.mktemp("pacs"), config={"DicomAet": "HOSPITAL"})
    pacs.start()
    yield pacs
    pacs.stop()


@pytest.fixture(scope="module")
def site_and_hub(
    real_services: None, seaweed: Seaweed, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Deployment, Deployment]]:
    logs = tmp_path_factory.mktemp("results-back")
    keys = logs / "vault"
    keys.mkdir()
    private, public = generate_keypair()
    (keys / "vault.key").write_bytes(private)
    (keys / "vault.pub").write_bytes(public)
    with paired(
        seaweed,
        logs,
        PROJECT,
        GIFTCLOUD_FORWARD__RETRY_BASE_SECONDS="0.5",
        GIFTCLOUD_FORWARD__POLL_SECONDS="0.2",
        GIFTCLOUD_FORWARD__PULL_SECONDS="0.5",
        GIFTCLOUD_ANONYMISE__VAULT_PUBLIC_KEY=str(keys / "vault.pub"),
        GIFTCLOUD_ANONYMISE__VAULT_PRIVATE_KEY=str(keys / "vault.key"),
    ) as (site, hub):
        site.add_person(*RITA, PROJECT, "member", ("reidentifier",))
        site.add_person(*CARL, PROJECT, "collaborator", ("reidentifier",))
        yield site, hub


def _items(site: Deployment, headers: dict[str, str]) -> dict[str, dict[str, Any]]:
    response = httpx.get(f"{site.url}/ingest/{PROJECT}/returns/items", headers=headers, timeout=30)
    response.raise_for_status()
    return {item["key"]: item for item in response.json()}


def _hub_copy(hub: Deployment) -> list[bytes]:
    """The hub's de-identified copies of the forwarded series, as a researcher fetches them."""
    client = DICOMwebClient(url=f"{hub.url}/dicomweb/{PROJECT}", headers=hub.token())
    (study,) = client.search_for_studies()
    study_uid = study["0020000D"]["Value"][0]
    (series,) = client.search_for_series(study_uid)
    datasets = client.retrieve_series(study_uid, series["0020000E"]["Value"][0])
    out = []
    for ds in sorted(datasets, key=lambda d: int(d.InstanceNumber)):
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        out.append(buffer.getvalue())
    return out


def test_a_result_goes_back_to_the_hospital_reidentified_only_once_approved(
    site_and_hub: tuple[Deployment, Deployment], hospital: Orthanc
) -> None:
    site, hub = site_and_hub
    admin, hub_admin = site.token(), hub.token()
    forwarding = httpx.put(
        f"{site.url}/ingest/{PROJECT}/forwarding", json={"enabled": True}, headers=admin
    )
    assert forwarding.status_code == 200, forwarding.text
    originals = ct_series(4, "MRN-77")
    assert site.stow(PROJECT, originals, admin).status_code == 200
    wait_for(
        lambda: hub.instance_count(PROJECT, hub.token()) == 4,
        timeout=180,
        what="the forwarded series at the hub",
    )

    # at the hub: a segmentation of the hub's copy, a CSV of measurements on the study
    copies = _hub_copy(hub)
    seg = segmentation(copies)
    assert hub.stow(PROJECT, [seg], hub_admin).status_code == 200
    hub_study = pydicom.dcmread(io.BytesIO(copies[0])).StudyInstanceUID
    csv = b"segment,volume_ml\nlesion,4.2\n"
    attached = httpx.post(
        f"{hub.url}/api/projects/{PROJECT}/files",
        files={"file": ("volumes.csv", csv, "text/csv")},
        data={"study": hub_study, "tool": "square-finder", "tool_version": "1.0"},
        headers=hub_admin,
    )
    assert attached.status_code == 201, attached.text
    # ... and more files, so that the site's pull lasts long enough to be killed during it
    for n in range(EXTRA_FILES):
        extra = httpx.post(
            f"{hub.url}/api/projects/{PROJECT}/files",
            files={"file": (f"extra-{n}.csv", b"n\n%d\n" % n, "text/csv")},
            data={"study": hub_study},
            headers=hub_admin,
        )
        assert extra.status_code == 201, extra.text
    # ... and one of a subject another site sent (its own keys): not this site's to take
    other = Deidentifier(ProjectKeys.derive(b"another site's secret, 32 bytes!", PROJECT))
    stranger = [other.deidentify(data).data for data in ct_series(2, "MRN-99")]
    assert hub.stow(PROJECT, stranger, hub_admin).status_code == 200
    wait_for(lambda: hub.instance_count(PROJECT, hub.token()) == 7, timeout=120, what="at the hub")
    stranger_seg = segmentation(stranger)
    assert hub.stow(PROJECT, [stranger_seg], hub_admin).status_code == 200
    hub_results = wait_for(
        lambda: (
            len(
                found := httpx.get(
                    f"{hub.url}/api/projects/{PROJECT}/results", headers=hub.token()
                ).json()
            )
            == 3 + EXTRA_FILES
            and found
        ),
        timeout=120,
        what="the results at the hub",
    )
    seg_uid = pydicom.dcmread(io.BytesIO(seg)).SOPInstanceUID
    stranger_uid = pydicom.dcmread(io.BytesIO(stranger_seg)).SOPInstanceUID
    file_key = next(r["key"] for r in hub_results if r["name"] == "volumes.csv")
    total = 3 + EXTRA_FILES

    # the site pulls them; its ingest is killed -9 during the pull and comes back
    assert (
        httpx.get(f"{site.url}/ingest/{PROJECT}/returns", headers=admin).json()["enabled"] is False
    )
    enabled = httpx.put(
        f"{site.url}/ingest/{PROJECT}/returns", json={"enabled": True}, headers=admin
    )
    assert enabled.status_code == 200 and enabled.json()["hub"] == hub.url
    rita = site.token(*RITA)
    part = wait_for(
        lambda: (n := len(_items(site, rita))) > 0 and n, interval=0.02, what="the pull under way"
    )
    site.services["ingest"].kill()
    assert part < total, "the pull ended before the kill: more files are needed"
    site.services["ingest"].start()
    items = wait_for(
        lambda: (
            (found := _items(site, rita))
            and len(found) == total
            and all(i["state"] != "checking" for i in found.values())
            and found
        ),
        timeout=120,
        what="every result checked at the site",
    )
    assert items[seg_uid]["state"] == "waiting", items[seg_uid]
    assert items[file_key]["state"] == "waiting", items[file_key]
    refused = items[stranger_uid]
    assert refused["state"] == "refused"
    assert "was never sent from this site" in refused["reason"]

    # nothing leaves before approval; a collaborator cannot approve, even with the role
    time.sleep(2)
    assert httpx.get(f"{hospital.url}/instances").json() == []
    node = httpx.put(
        f"{site.url}/ingest/nodes/hospital",
        json={
            "ae_title": "HOSPITAL",
            "host": "127.0.0.1",
            "port": hospital.dicom_port,
            "renderings": True,  # this PACS cannot show a segmentation: captures too
        },
        headers=admin,
    )
    assert node.status_code == 200, node.text
    approve = f"{site.url}/ingest/{PROJECT}/returns/items/{seg_uid}/approve"
    carl = httpx.post(approve, json={"destination": "hospital"}, headers=site.token(*CARL))
    assert carl.status_code == 403, carl.text
    refusal = httpx.post(
        f"{site.url}/ingest/{PROJECT}/returns/items/{stranger_uid}/approve",
        json={"destination": "hospital"},
        headers=rita,
    )
    assert refusal.status_code == 409 and "never sent" in refusal.text

    # rita approves: the PACS receives the segmentation, re-identified
    assert httpx.post(approve, json={"destination": "hospital"}, headers=rita).status_code == 200
    delivered = wait_for(
        lambda: (item := _items(site, rita)[seg_uid])["state"] in ("delivered", "failed") and item,
        timeout=60,
        what="the segmentation delivered",
    )
    assert delivered["state"] == "delivered", delivered
    assert "0x0000" in delivered["status"]
    assert "with 4 rendering(s)" in delivered["status"], delivered
    received_all = [
        pydicom.dcmread(io.BytesIO(httpx.get(f"{hospital.url}/instances/{i}/file").content))
        for i in httpx.get(f"{hospital.url}/instances").json()
    ]
    by_class = {}
    for ds in received_all:
        by_class.setdefault(ds.SOPClassUID.name, []).append(ds)
    assert sorted((k, len(v)) for k, v in by_class.items()) == [
        ("Secondary Capture Image Storage", 4),
        ("Segmentation Storage", 1),
    ]
    (received,) = by_class["Segmentation Storage"]
    sources = [pydicom.dcmread(io.BytesIO(o)) for o in originals]
    assert (str(received.PatientName), received.PatientID) == ("Quill^Ada", "MRN-77")
    assert received.StudyInstanceUID == sources[0].StudyInstanceUID
    assert received.FrameOfReferenceUID == sources[0].FrameOfReferenceUID
    referenced = received.ReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == sources[0].SeriesInstanceUID
    assert {r.ReferencedSOPInstanceUID for r in referenced.ReferencedInstanceSequence} == {
        s.SOPInstanceUID for s in sources
    }
    assert received.SOPInstanceUID != seg_uid
    assert received.SeriesDescription.startswith("RESEARCH RESULT, NOT FOR DIAGNOSIS")
    for capture in by_class["Secondary Capture Image Storage"]:
        assert capture.PatientID == "MRN-77" and capture.BurnedInAnnotation == "YES"
        assert capture.StudyInstanceUID == sources[0].StudyInstanceUID
        assert capture.SeriesDescription.startswith("NOT FOR DIAGNOSIS")
    # Orthanc files them under the hospital's patient
    (patient,) = httpx.get(f"{hospital.url}/patients", params={"expand": ""}).json()
    assert patient["MainDicomTags"]["PatientID"] == "MRN-77"

    # the CSV is handed over by download once approved
    file_approve = f"{site.url}/ingest/{PROJECT}/returns/items/{file_key}/approve"
    assert httpx.post(file_approve, json={}, headers=rita).status_code == 200
    content = httpx.get(
        f"{site.url}/ingest/{PROJECT}/returns/items/{file_key}/content", headers=rita
    )
    assert content.status_code == 200 and content.content == csv

    # pulled again and again, killed once: each result once, the PACS one instance
    time.sleep(2)
    assert len(_items(site, rita)) == total
    assert len(httpx.get(f"{hospital.url}/instances").json()) == 5
    status = httpx.get(f"{site.url}/ingest/{PROJECT}/returns", headers=admin).json()
    assert status["states"] == {"delivered": 2, "refused": 1, "waiting": EXTRA_FILES}, status

    # the audit trail: who approved, what was delivered where, and who was refused
    trail = httpx.get(
        f"{site.url}/api/projects/{PROJECT}/audit",
        params={"action": "ingest.result", "limit": 100},
        headers=admin,
    ).json()
    done = {(e["actor"], e["action"], e["outcome"]) for e in trail}
    assert ("rita", "ingest.result.approve", "success") in done
    assert ("rita", "ingest.result.deliver", "success") in done
    denied = httpx.get(
        f"{site.url}/api/projects/{PROJECT}/audit",
        params={"actor": "carl", "outcome": "denied", "limit": 100},
        headers=admin,
    ).json()
    assert any("approve" in e["action"] for e in denied), denied


def test_a_reidentifier_decides_with_the_command(
    site_and_hub: tuple[Deployment, Deployment], tmp_path: Path
) -> None:
    """``giftcloud results inbox`` and ``approve``, as rita at the site: one file declined
    (its copies gone), one approved; a result not waiting is one line and exit 2."""
    site, _ = site_and_hub
    user = User(tmp_path)
    user.run("login", "--url", site.url, "--username", RITA[0], stdin=RITA[1] + "\n")
    listed = user.run("results", "inbox", PROJECT, "--state", "waiting").stdout
    waiting = [line.split()[0] for line in listed.splitlines()[1:] if line.strip()]
    assert len(waiting) >= 2 and all(k.startswith("file:") for k in waiting), listed
    declined = user.run("results", "approve", PROJECT, waiting[0], "--decline", "not ours")
    assert declined.stdout.startswith(f"declined {waiting[0]}"), declined.stdout
    to_a_node = user.run("results", "approve", PROJECT, waiting[1], "--to", "hospital", code=2)
    assert "a file is not sent to a node" in one_line(to_a_node)
    approved = user.run("results", "approve", PROJECT, waiting[1]).stdout
    assert approved.startswith(f"approved {waiting[1]}: download it from"), approved
    again = user.run("results", "approve", PROJECT, waiting[0], code=2)
    assert "is declined (not ours)" in one_line(again)
    refused = user.run("results", "inbox", PROJECT, "--state", "refused").stdout
    assert "was never sent from this site" in refused, refused
    content = f"{site.url}/ingest/{PROJECT}/returns/items/{waiting[0]}/content"
    gone = httpx.get(content, headers=site.token(*RITA))
    assert gone.status_code == 409 and "declined" in gone.text


def test_a_reidentifier_decides_on_the_results_page(
    site_and_hub: tuple[Deployment, Deployment],
) -> None:
    """The page in a real browser: the inbox with each state and reason (axe clean), who a
    subject is on asking, a file approved by its button; a collaborator gets no page."""

    site, _ = site_and_hub
    waiting = [i for i in _items(site, site.token(*RITA)).values() if i["state"] == "waiting"]
    assert waiting, "the first test leaves files waiting"
    with launched() as browser:
        tab = Tab(browser, site.url)
        try:
            tab.sign_in(*RITA)
            tab.go(f"/projects/{PROJECT}")
            tab.page.click("text=Results to approve")
            tab.page.wait_for_selector("[data-returns][data-loaded=true]")
            listed = tab.page.inner_text("[data-rows]")
            assert "was never sent from this site" in listed, listed
            assert "segmentation" in listed and "delivered" in listed, listed
            assert "MRN-77" not in listed  # nobody's identity until asked
            assert tab.check("results-to-approve") == []
            row = tab.page.locator(f"tr[data-key='{waiting[0]['key']}']")
            row.locator("text=Who?").click()
            row.locator("text=Quill Ada").wait_for()
            assert "ID MRN-77, born 19700101" in row.inner_text()
            row.locator("text=Approve").click()
            tab.page.wait_for_selector("text=it may be downloaded")
            decided = tab.page.locator(f"tr[data-key='{waiting[0]['key']}']")
            assert decided.get_attribute("data-state") == "delivered"
            assert "by rita" in decided.inner_text()
            assert tab.errors == [], tab.errors
        finally:
            tab.close()
        stranger = Tab(browser, site.url)
        try:
            stranger.sign_in(*CARL)
            answer = stranger.go(f"/projects/{PROJECT}/returns")
            assert answer.status == 403
            stranger.go(f"/projects/{PROJECT}")
            assert stranger.page.locator("text=Results to approve").count() == 0
        finally:
            stranger.close()
    trail = httpx.get(
        f"{site.url}/api/projects/{PROJECT}/audit",
        params={"actor": "rita", "action": "anonymise.reidentify", "limit": 10},
        headers=site.token(),
    ).json()
    assert trail and trail[0]["outcome"] == "success", trail

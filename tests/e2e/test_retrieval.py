"""Cohort retrieval from a PACS: Debian's Orthanc on loopback is the hospital PACS (its own
storage in a temporary folder), giftcloud's five services retrieve from it by C-FIND and
C-MOVE to ingest's DICOM node. By accession list (JSON and CSV), by patient ID and date
range; again (nothing moved twice); kill -9 of ingest in the middle of a retrieval."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from support.deployment import Deployment, deployed
from support.dicom_files import synthetic_instance
from support.infra import Orthanc, Seaweed, free_port, wait_for

pytestmark = pytest.mark.skipif(
    shutil.which("Orthanc") is None and not Path("/usr/sbin/Orthanc").exists(),
    reason="Debian's orthanc is not installed (apt-get install orthanc)",
)

PROJECT, AE = "cohort", "GC_COHORT"
#: two patients x two studies (accession, date, instances), and one large study for the kill
STUDIES = {
    ("P1", "Alpha^Ann"): [("A1", "20200105", 3), ("A2", "20210310", 3)],
    ("P2", "Beta^Bob"): [("A3", "20200620", 3), ("A4", "20220101", 3)],
    ("P3", "Gamma^Gus"): [("A5", "20230101", 120)],
}


def instances() -> list[bytes]:
    files = []
    for (patient_id, name), studies in STUDIES.items():
        for number, (accession, date, count) in enumerate(studies):
            study_uid = f"1.2.826.0.1.3680043.9.7.61.{patient_id[1:]}.{number}"
            for i in range(count):
                ds = pydicom.dcmread(
                    io.BytesIO(
                        synthetic_instance(
                            patient=name,
                            patient_id=patient_id,
                            study_uid=study_uid,
                            series_uid=f"{study_uid}.1",
                            sop_uid=f"{study_uid}.1.{i}",
                        )
                    )
                )
                ds.AccessionNumber, ds.StudyDate, ds.InstanceNumber = accession, date, i + 1
                buffer = io.BytesIO()
                ds.save_as(buffer, enforce_file_format=True)
                files.append(buffer.getvalue())
    return files


@pytest.fixture(scope="module")
def site(
    real_services: None, seaweed: Seaweed, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Deployment, Orthanc]]:
    logs = tmp_path_factory.mktemp("retrieval")
    port = free_port()
    orthanc = Orthanc(
        logs / "orthanc",
        config={
            # the PACS knows giftcloud's node under its own title (the caller) and under the
            # project's (the move destination)
            "DicomModalities": {
                "giftcloud": ["GIFTCLOUD", "127.0.0.1", port],
                "cohort": [AE, "127.0.0.1", port],
            },
        },
    ).start()
    try:
        for data in instances():
            httpx.post(f"{orthanc.url}/instances", content=data, timeout=30).raise_for_status()
        with deployed(
            seaweed,
            logs,
            GIFTCLOUD_INGEST__DICOM_PORT=str(port),
            GIFTCLOUD_INGEST__RETRIEVAL_LEASE_SECONDS="4",
            GIFTCLOUD_INGEST__RETRIEVAL_POLL_SECONDS="0.5",
        ) as deployment:
            headers = deployment.token()
            deployment.create_project(PROJECT)
            node = {"ae_title": "PEER", "host": "127.0.0.1", "port": orthanc.dicom_port}
            assert (
                httpx.put(
                    f"{deployment.url}/ingest/nodes/pacs", json=node, headers=headers
                ).status_code
                == 200
            )
            assert (
                httpx.put(
                    f"{deployment.url}/ingest/{PROJECT}/dicom",
                    json={"ae_title": AE},
                    headers=headers,
                ).status_code
                == 200
            )
            yield deployment, orthanc
    finally:
        orthanc.stop()


def start(deployment: Deployment, queries: list[dict[str, str]]) -> str:
    response = httpx.post(
        f"{deployment.url}/ingest/{PROJECT}/retrievals",
        json={"node": "pacs", "queries": queries},
        headers=deployment.token(),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def status(deployment: Deployment, retrieval_id: str) -> dict[str, Any]:
    response = httpx.get(
        f"{deployment.url}/ingest/{PROJECT}/retrievals/{retrieval_id}",
        headers=deployment.token(),
        timeout=30,
    )
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def settled(deployment: Deployment, retrieval_id: str, timeout: float = 240) -> dict[str, Any]:
    """Done, and every instance moved is archived or rejected."""

    def check() -> dict[str, Any] | None:
        found = status(deployment, retrieval_id)
        if found["state"] != "done":
            return None
        for query in found["queries"]:
            if query["moved"] != query["archived"] + query["rejected"]:
                return None
        return found

    result: dict[str, Any] = wait_for(check, timeout=timeout, what=f"retrieval {retrieval_id}")
    return result


def qido(deployment: Deployment, level: str, **params: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{deployment.url}/dicomweb/{PROJECT}/{level}",
        params={"limit": "1000", **params},
        headers=deployment.token(),
        timeout=60,
    )
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()
    return result


def test_a_retrieval_by_accession_list_archives_each_study_de_identified(
    site: tuple[Deployment, Orthanc],
) -> None:
    deployment, _ = site
    retrieval = start(deployment, [{"AccessionNumber": "A1"}, {"AccessionNumber": "A3"}])
    found = settled(deployment, retrieval)
    for query in found["queries"]:
        assert query["state"] == "found" and query["studies_found"] == 1, query
        assert (query["expected"], query["moved"], query["archived"]) == (3, 3, 3), query
        assert query["rejected"] == 0 and query["failed"] == 0
        assert query["studies"][0]["state"] == "moved"
        assert query["studies"][0]["remote_status"] == "success (0x0000)"
    studies = qido(deployment, "studies", includefield="all")
    assert len(studies) == 2
    text = str(studies)
    for planted in ("Alpha^Ann", "Beta^Bob", "A1", "P1", "Secret Lane"):
        assert f"'{planted}'" not in text
    # the project's upload list shows the PACS's association as the source
    uploads = httpx.get(
        f"{deployment.url}/ingest/{PROJECT}/uploads", headers=deployment.token()
    ).json()
    assert any(u["source"] == "dicom:PEER@127.0.0.1" for u in uploads)


def test_by_patient_and_date_range_and_by_csv(site: tuple[Deployment, Orthanc]) -> None:
    deployment, _ = site
    by_patient = start(deployment, [{"PatientID": "P1", "StudyDate": "20210101-20211231"}])
    found = settled(deployment, by_patient)
    [query] = found["queries"]
    assert query["studies_found"] == 1 and query["archived"] == 3, query  # A2, not A1
    csv = "AccessionNumber\nA4\nNO-SUCH-ACCESSION\n"
    response = httpx.post(
        f"{deployment.url}/ingest/{PROJECT}/retrievals?node=pacs",
        content=csv,
        headers={**deployment.token(), "Content-Type": "text/csv"},
    )
    assert response.status_code == 201, response.text
    found = settled(deployment, response.json()["id"])
    assert [q["studies_found"] for q in found["queries"]] == [1, 0]
    assert found["queries"][0]["archived"] == 3
    # two patients, four studies: one subject per patient
    studies = qido(deployment, "studies")
    assert len(studies) == 4
    assert len({s["00100020"]["Value"][0] for s in studies}) == 2


def test_the_same_retrieval_again_moves_nothing(site: tuple[Deployment, Orthanc]) -> None:
    deployment, _ = site
    before = len(qido(deployment, "instances"))
    uploads = len(_uploads(deployment))
    found = settled(
        deployment, start(deployment, [{"AccessionNumber": "A1"}, {"AccessionNumber": "A3"}])
    )
    for query in found["queries"]:
        [study] = query["studies"]
        assert study["state"] == "skipped" and "already retrieved" in study["remote_status"]
        assert query["moved"] == 0
    assert len(_uploads(deployment)) == uploads  # the PACS was not asked to send anything
    assert len(qido(deployment, "instances")) == before


def _uploads(deployment: Deployment) -> list[dict[str, Any]]:
    response = httpx.get(f"{deployment.url}/ingest/{PROJECT}/uploads", headers=deployment.token())
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()
    return result


def test_bad_queries_are_refused_with_the_reason(site: tuple[Deployment, Orthanc]) -> None:
    deployment, _ = site
    headers = deployment.token()
    url = f"{deployment.url}/ingest/{PROJECT}/retrievals"
    cases = [
        ({"node": "pacs", "queries": [{"PatientName": "X"}]}, "not a query key"),
        ({"node": "pacs", "queries": [{"StudyDate": "2020"}]}, "StudyDate"),
        ({"node": "pacs", "queries": [{"PatientID": "P*"}]}, "no wildcard"),
        ({"node": "nowhere", "queries": [{"PatientID": "P1"}]}, "no remote node"),
    ]
    for body, why in cases:
        response = httpx.post(url, json=body, headers=headers)
        assert response.status_code in (400, 404), response.text
        assert why in response.text, response.text
    response = httpx.post(
        url + "?node=pacs",
        content="Name\nX\n",
        headers={**headers, "Content-Type": "text/csv"},
    )
    assert response.status_code == 400 and "header row" in response.text


def test_kill_9_of_ingest_in_the_middle_of_a_retrieval(site: tuple[Deployment, Orthanc]) -> None:
    deployment, _ = site
    retrieval = start(deployment, [{"AccessionNumber": "A5"}])

    def some_moved() -> bool:
        return int(status(deployment, retrieval)["queries"][0]["moved"]) >= 20

    wait_for(some_moved, timeout=120, what="part of the study moved")
    deployment.services["ingest"].kill()
    deployment.services["ingest"].start()
    found = settled(deployment, retrieval, timeout=300)
    [query] = found["queries"]
    assert query["expected"] == 120
    assert query["moved"] == 120 and query["archived"] == 120, query
    # nothing twice: 12 earlier instances and these 120
    assert len(qido(deployment, "instances")) == 12 + 120


# last: it adds to the PACS, which the tests above count on as it was
def test_a_study_the_pacs_added_to_since_is_completed(site: tuple[Deployment, Orthanc]) -> None:
    """A study retrieved before, to which the PACS added instances since: only those are
    moved ("3 new"); asked again, it is complete and skipped."""
    deployment, orthanc = site
    query = [{"AccessionNumber": "A4"}]
    settled(deployment, start(deployment, query))  # moved now, or by an earlier test
    before = len(qido(deployment, "instances"))
    study_uid = "1.2.826.0.1.3680043.9.7.61.2.1"  # P2's second study (A4), three instances
    for i in range(3, 6):
        ds = pydicom.dcmread(
            io.BytesIO(
                synthetic_instance(
                    patient="Beta^Bob",
                    patient_id="P2",
                    study_uid=study_uid,
                    series_uid=f"{study_uid}.1",
                    sop_uid=f"{study_uid}.1.{i}",
                )
            )
        )
        ds.AccessionNumber, ds.StudyDate, ds.InstanceNumber = "A4", "20220101", i + 1
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        httpx.post(f"{orthanc.url}/instances", content=buffer.getvalue()).raise_for_status()

    found = settled(deployment, start(deployment, query))
    [result] = found["queries"]
    [study] = result["studies"]
    assert study["state"] == "moved" and study["remote_status"] == "3 new", study
    assert (result["moved"], result["archived"]) == (3, 3), result
    wait_for(
        lambda: len(qido(deployment, "instances")) == before + 3,
        timeout=60,
        what="the three new instances archived",
    )

    again = settled(deployment, start(deployment, query))
    [study] = again["queries"][0]["studies"]
    assert study["state"] == "skipped", study
    assert "already complete (6 of 6" in study["remote_status"], study

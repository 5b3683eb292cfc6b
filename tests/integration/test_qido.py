"""QIDO-RS per PS3.18 §10.6 over the catalogue: matching, paging, return keys, refusals.

A small catalogue of de-identified instances (two subjects, three studies, CT and MR, one
study without an AccessionNumber) goes to the api as ``instances.archived`` events, the
metadata made by the archive's own code; every search is then asked of the real app.
"""

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from giftcloud_api.app import build as build_api
from giftcloud_core.app import Runtime
from giftcloud_core.events import InstancesArchived, ProjectCreated
from integration.conftest import eventually, running
from support.catalogue import catalogue

Bearer = Callable[..., dict[str, str]]
STUDY_KEYS = {
    "00080005",
    "00080020",
    "00080030",
    "00080050",
    "00080056",
    "00080061",
    "00080090",
    "00080201",
    "00081190",
    "00100010",
    "00100020",
    "00100030",
    "00100040",
    "0020000D",
    "00200010",
    "00201206",
    "00201208",
}
SERIES_KEYS = {
    "00080005",
    "00080060",
    "00080201",
    "0008103E",
    "00081190",
    "0020000E",
    "00200011",
    "00201209",
    "00400244",
    "00400245",
    "00400275",
}
INSTANCE_KEYS = {
    "00080005",
    "00080016",
    "00080018",
    "00080056",
    "00080201",
    "00081190",
    "00200013",
    "00280010",
    "00280011",
    "00280100",
    "00280008",
}


def _values(results: list[dict[str, Any]], tag: str) -> list[Any]:
    return [r[tag]["Value"][0] if "Value" in r[tag] else None for r in results]


@pytest.fixture
async def qido(runtime: Runtime, bearer: Bearer) -> Any:
    runtime.settings.api.qido_max_limit = 5
    reader = bearer(projects={"proj": "collaborator"})
    async with running(runtime, [build_api(runtime)]) as client:
        await runtime.bus.publish(ProjectCreated(project="proj", title="P", correlation_id="c"))
        instances = catalogue()
        # in two events, the second redelivered: the counts grow by what is new only
        first = InstancesArchived(
            project="proj", correlation_id="u1", instances=tuple(instances[:7])
        )
        second = InstancesArchived(
            project="proj", correlation_id="u2", instances=tuple(instances[7:])
        )
        for event in (first, second, second):
            await runtime.bus.publish(event)

        async def catalogued() -> bool:
            answer = await client.get("/dicomweb/proj/studies", headers=reader)
            if answer.status_code != 200:  # the project not known to api yet: a 404
                return False
            counts = [s["00201208"]["Value"][0] for s in answer.json()]
            return sum(counts) == len(instances)

        await eventually(catalogued, what="the catalogue filled")

        async def ask(path: str, status: int = 200) -> Any:
            answer: httpx.Response = await client.get(f"/dicomweb/proj{path}", headers=reader)
            assert answer.status_code == status, (path, answer.text)
            if status == 200:
                assert answer.headers["content-type"].startswith("application/dicom+json")
                return (
                    answer.json()
                    if "warning" not in answer.headers
                    else (
                        answer.json(),
                        answer.headers["warning"],
                    )
                )
            return answer.json()["detail"]

        yield ask


async def test_studies_carry_the_required_attributes_and_counts(qido: Any) -> None:
    studies = await qido("/studies")
    assert _values(studies, "0020000D") == ["2.25.100", "2.25.200", "2.25.300"]
    for study in studies:
        assert set(study) >= STUDY_KEYS, STUDY_KEYS - set(study)
    alpha2 = studies[1]
    assert alpha2["00080061"] == {"vr": "CS", "Value": ["CT", "MR"]}
    assert alpha2["00201206"]["Value"] == [3] and alpha2["00201208"]["Value"] == [5]
    assert alpha2["00080050"] == {"vr": "SH"}  # absent in the files: empty, never invented
    assert alpha2["00100020"]["Value"] == ["SUBJ-ALPHA"]
    assert alpha2["00100010"]["Value"] == [{"Alphabetic": "SUBJ^ALPHA"}]
    assert alpha2["00081190"]["Value"][0].endswith("/dicomweb/proj/studies/2.25.200")
    assert alpha2["00080056"]["Value"] == ["ONLINE"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("PatientID=SUBJ-BETA", ["2.25.300"]),
        ("PatientID=SUBJ-*", ["2.25.100", "2.25.200", "2.25.300"]),
        ("PatientID=SUBJ-?ETA", ["2.25.300"]),
        ("StudyDate=20210615", ["2.25.200"]),
        ("StudyDate=20200601-20211231", ["2.25.200"]),
        ("StudyDate=-20210101", ["2.25.100"]),
        ("StudyDate=20210101-", ["2.25.200", "2.25.300"]),
        ("ModalitiesInStudy=CT", ["2.25.100", "2.25.200"]),
        ("ModalitiesInStudy=M*", ["2.25.200", "2.25.300"]),
        ("StudyInstanceUID=2.25.100,2.25.300", ["2.25.100", "2.25.300"]),
        ("StudyInstanceUID=2.25.100%5C2.25.300", ["2.25.100", "2.25.300"]),
        ("0020000D=2.25.200", ["2.25.200"]),
        ("AccessionNumber=ACC3", ["2.25.300"]),
        ("AccessionNumber=ACC*", ["2.25.100", "2.25.300"]),
        ("PatientName=subj%5Ealpha", ["2.25.100", "2.25.200"]),
        ("PatientName=*BET*", ["2.25.300"]),
        ("PatientName=BETA", []),
        ("PatientName=BET&fuzzymatching=true", ["2.25.300"]),
        ("PatientName=alp&fuzzymatching=true", ["2.25.100", "2.25.200"]),
        ("PatientSex=F&StudyDate=2022*", None),  # a DA is a date or a range: refused below
        ("PatientSex=M", []),
        ("PatientID=", ["2.25.100", "2.25.200", "2.25.300"]),  # universal matching
    ],
)
async def test_study_matching(qido: Any, query: str, expected: list[str] | None) -> None:
    if expected is None:
        assert "StudyDate" in await qido(f"/studies?{query}", 400)
        return
    assert _values(await qido(f"/studies?{query}"), "0020000D") == expected


async def test_paging_and_the_cut_warning(qido: Any) -> None:
    assert _values(await qido("/studies?limit=2"), "0020000D") == ["2.25.100", "2.25.200"]
    assert _values(await qido("/studies?limit=2&offset=2"), "0020000D") == ["2.25.300"]
    assert await qido("/studies?offset=3") == []
    # more than the server's maximum (5 here): cut, with the warning; the pages join up
    results, warning = await qido("/instances")
    assert len(results) == 5 and warning.startswith("299 ")
    results2, _ = await qido("/instances?limit=50&offset=5")
    rest = await qido("/instances?offset=10")
    uids = _values(results + results2 + rest, "00080018")
    assert len(uids) == len(set(uids)) == 12
    assert len(await qido("/instances?limit=2&offset=10")) == 2  # asked for 2: no warning


async def test_series_and_instances_at_every_resource(qido: Any) -> None:
    of_study = await qido("/studies/2.25.200/series")
    assert _values(of_study, "0020000E") == ["2.25.210", "2.25.220", "2.25.230"]
    for series in of_study:
        assert set(series) >= SERIES_KEYS, SERIES_KEYS - set(series)
    assert _values(of_study, "00201209") == [2, 2, 1]
    assert "00100020" not in of_study[0]  # under a study, the study's keys are not repeated

    everywhere = await qido("/series?Modality=MR&StudyDate=20210101-")  # a parent-level key
    assert _values(everywhere, "0020000E") == ["2.25.210", "2.25.220", "2.25.310"]
    assert STUDY_KEYS - {"00201206", "00201208", "00080061"} <= set(everywhere[0])
    assert _values(await qido("/series?PatientID=SUBJ-BETA"), "0020000E") == ["2.25.310"]
    assert _values(await qido("/series?SeriesNumber=2"), "0020000E") == ["2.25.220"]

    of_series = await qido("/studies/2.25.300/series/2.25.310/instances")
    assert _values(of_series, "00200013") == [1, 2, 3, 4]
    for instance in of_series:
        assert set(instance) >= INSTANCE_KEYS, INSTANCE_KEYS - set(instance)
    assert of_series[0]["00280010"]["Value"] == [8]
    assert _values(
        await qido("/studies/2.25.300/series/2.25.310/instances?InstanceNumber=3"), "00080018"
    ) == ["2.25.310.3"]
    of_study_instances = await qido("/studies/2.25.200/instances?Modality=CT")
    assert _values(of_study_instances, "00080018") == ["2.25.230.1"]
    assert set(of_study_instances[0]) >= SERIES_KEYS  # with their series' keys
    found = await qido("/instances?StudyInstanceUID=2.25.100&limit=2&offset=1")
    assert _values(found, "00080018") == ["2.25.110.2", "2.25.110.3"]
    assert STUDY_KEYS - {"00201206", "00201208", "00080061"} <= set(found[0])
    assert _values(await qido("/instances?SOPInstanceUID=2.25.310.4"), "00200013") == [4]
    assert await qido("/studies/9.9/series") == []
    assert await qido("/studies/9.9/instances") == []


async def test_includefield(qido: Any) -> None:
    [study] = await qido("/studies?StudyInstanceUID=2.25.300&includefield=StudyDescription")
    assert study["00081030"]["Value"] == ["Study of Doe^Jane"]
    # a series-level attribute has no one value for a study: named, it comes back empty
    [study] = await qido("/studies?StudyInstanceUID=2.25.300&includefield=00080060,Manufacturer")
    assert study["00080060"] == {"vr": "CS"} and study["00080070"] == {"vr": "LO"}
    [series] = await qido("/studies/2.25.300/series?includefield=Manufacturer")
    assert series["00080070"]["Value"] == ["ACME"]
    [instance] = await qido(
        "/studies/2.25.300/series/2.25.310/instances?InstanceNumber=1&includefield=all"
    )
    assert instance["00280004"]["Value"] == ["MONOCHROME2"]
    assert "7FE00010" not in instance  # never bulk data in a search
    many = ",".join(f"{0x00180000 + n:08X}" for n in range(0x10, 0x60))  # 80 of them
    [instance] = await qido(
        f"/studies/2.25.300/series/2.25.310/instances?InstanceNumber=1&includefield={many}"
    )
    assert len(instance) >= 80 + 11 and instance["00280010"]["Value"] == [
        8
    ]  # the required ones, read whole this time
    [study] = await qido("/studies?StudyInstanceUID=2.25.300&includefield=all")
    assert study["00100030"]["Value"] and "00280010" not in study
    # every attribute held at study level, and PS3.18's list for includefield=all, present
    assert study["00081030"]["Value"] == ["Study of Doe^Jane"]
    for tag in ("00080063", "00081060", "00081080", "00081110", "00101010", "00101020",
                "00101030", "00102180", "001021B0"):  # fmt: skip
        assert tag in study, tag
    assert not {"0020000E", "00080060", "00080018"} & set(study)  # nothing below the study
    [series] = await qido("/studies/2.25.300/series?includefield=all")
    assert series["00080070"]["Value"] == ["ACME"] and series["00081030"]["Value"]
    assert "00080018" not in series


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("/studies?NoSuchKeyword=1", "not a DICOM attribute keyword"),
        ("/studies?SOPInstanceUID=2.25.1", "instance-level attribute"),
        ("/studies?Modality=CT", "series-level attribute"),
        ("/studies?StudyDate=2021-06-15", "YYYYMMDD"),
        ("/studies?StudyDate=-", "at least one end"),
        ("/studies?limit=ten", "not a whole number"),
        ("/studies?limit=0", "from 1"),
        ("/studies?offset=-1", "from 0"),
        ("/studies?offset=99999999999999999999", "from 0"),
        ("/studies?PatientID=a%00b", "NUL"),
        ("/studies?StudyInstanceUID=2.25.01", "not a UID"),
        ("/studies?00400275.00080050=1", "nested"),
        ("/studies?PixelData=1", "cannot be matched"),
        ("/studies?NumberOfStudyRelatedInstances=3", "computed"),
        ("/studies?fuzzymatching=yes", "fuzzymatching"),
        ("/studies?PatientID=A&PatientID=B", "given 2 times"),
        ("/series?SOPClassUID=1.2", "instance-level"),
        ("/studies?includefield=NotAKeyword", "includefield"),
    ],
)
async def test_a_bad_parameter_is_400_with_the_reason(qido: Any, query: str, reason: str) -> None:
    assert reason in await qido(query, 400)


async def test_metadata_of_a_study_comes_from_the_catalogue(
    runtime: Runtime, qido: Any, bearer: Bearer
) -> None:
    async with running(runtime, [build_api(runtime)]) as client:
        answer = await client.get(
            "/dicomweb/proj/studies/2.25.200/metadata",
            headers=bearer(projects={"proj": "collaborator"}),
        )
    assert answer.status_code == 200
    metadata = answer.json()
    assert sorted(m["00080018"]["Value"][0] for m in metadata) == [
        "2.25.210.1",
        "2.25.210.2",
        "2.25.220.1",
        "2.25.220.2",
        "2.25.230.1",
    ]
    assert all(m["7FE00010"]["BulkDataURI"] for m in metadata)

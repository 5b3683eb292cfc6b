"""A hospital sends real files through the gateway; a researcher finds and fetches them,
de-identified, with dicomweb-client."""

import concurrent.futures
import io
import warnings

import httpx
import pydicom
from dicomweb_client.api import DICOMwebClient
from e2e.conftest import Deployment, wait_until_settled
from giftcloud_api.catalogue.derived import kind_of, sources
from giftcloud_deid import Deidentifier, ProjectKeys, Rejected
from giftcloud_dicom.instance import InvalidInstance, inspect_instance
from support.dicom_files import bundled_files, synthetic_instance
from support.infra import wait_for

IDENTIFYING = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientAddress",
    "OtherPatientIDs",
    "AccessionNumber",
    "ReferringPhysicianName",
    "InstitutionName",
    "InstitutionAddress",
)


TEXT_VRS = {"PN", "LO", "SH", "LT", "ST", "UT", "UC", "AE", "CS"}


def identifiers(ds: pydicom.Dataset) -> set[str]:
    values = set()
    for keyword in IDENTIFYING:
        value = str(ds.get(keyword, "") or "")
        if len(value) >= 4:
            values.add(value)
    return values


def device_names(ds: pydicom.Dataset) -> set[str]:
    return {str(ds.get(k, "") or "") for k in ("Manufacturer", "ManufacturerModelName")}


def dicomweb(deployment: Deployment, project: str) -> DICOMwebClient:
    return DICOMwebClient(url=f"{deployment.url}/dicomweb/{project}", headers=deployment.token())


def test_files_come_back_deidentified_and_grouped(deployment: Deployment, tcia_files) -> None:  # type: ignore[no-untyped-def]
    deployment.create_project("e2e")
    admin = deployment.token()

    # pydicom's bundled files through plain STOW-RS: every one stored or refused with a reason
    candidates, sop_uids, originals, devices = [], set(), set(), set()
    for path in bundled_files():
        data = path.read_bytes()
        try:
            sop_uids.add(inspect_instance(data).sop_instance_uid)
        except InvalidInstance:
            continue
        candidates.append(data)
        with warnings.catch_warnings():  # some bundled files are odd on purpose
            warnings.simplefilter("ignore")
            source = pydicom.dcmread(path)
            originals |= identifiers(source)
            devices |= device_names(source)
    uploads, refused_at_stow = [], 0
    for start in range(0, len(candidates), 10):
        response = deployment.stow("e2e", candidates[start : start + 10], admin)
        # what the profile decides from the header (burned-in text risks) is refused here
        assert response.status_code in (200, 202, 400), response.text
        failed = response.json().get("00081198", {}).get("Value", [])
        assert all(item["00091001"]["Value"][0] for item in failed)  # each with its reason
        refused_at_stow += len(failed)
        uploads.append(response.headers["X-Giftcloud-Upload"])

    # the TCIA series (one patient, planted PHI) through dicomweb-client
    client = dicomweb(deployment, "e2e")
    tcia = [pydicom.dcmread(p) for p in tcia_files]
    client.store_instances(datasets=tcia)

    statuses = wait_until_settled(deployment, "e2e", uploads)
    for status in statuses:
        for rejection in status["rejected"]:  # type: ignore[attr-defined]
            assert rejection["reason"], status
    archived = sum(int(s["archived"]) for s in statuses)  # type: ignore[call-overload]
    rejected = sum(len(s["rejected"]) for s in statuses)  # type: ignore[arg-type]
    assert archived + rejected + refused_at_stow == len(candidates)
    assert refused_at_stow > rejected  # most refusals are now said at once, at STOW time
    rejected += refused_at_stow
    # exactly what the engine accepts (its decisions do not depend on the key) is archived;
    # the rest (burned-in text risks, missing UIDs...) was refused with a reason
    # but for results (a SEG, an SR) that derive from instances the project does not hold:
    # pydicom's name none of its other files, so the catalogue refuses each with the reason
    engine = Deidentifier(ProjectKeys.derive(b"any key will do for the decisions", "e2e"))
    accepted, made_sops, results = 0, set(), []
    for data in candidates:
        try:
            made = engine.deidentify(data)
        except Rejected:
            continue
        accepted += 1
        made_sops.add(made.sop_uid)
        if kind_of(made.sop_class_uid) is not None:
            results.append(sources(pydicom.dcmread(io.BytesIO(made.data)).to_json_dict()))
    unheld = [named for named in results if not named or not named <= made_sops]
    assert len(unheld) >= 2, results
    assert archived == accepted - len(unheld), (archived, accepted, len(unheld))
    reasons = [r["reason"] for s in statuses for r in s["rejected"]]  # type: ignore[attr-defined]
    assert sum("derive from" in r or "must name the instances" in r for r in reasons) == len(unheld)
    assert archived >= 20
    # files that share a SOP Instance UID are one instance in the archive
    expected = len(sop_uids) - rejected + len(tcia)

    def all_visible() -> bool:
        return len(client.search_for_instances()) >= expected

    wait_for(all_visible, timeout=120, what="every archived instance visible to QIDO-RS")
    studies = client.search_for_studies()
    assert studies

    originals |= {v for ds in tcia for v in identifiers(ds)}
    # device identity is kept by design; in pydicom's data one file's institution is another's
    # manufacturer ("GE MEDICAL SYSTEMS"), which is no patient identifier
    devices |= {n for ds in tcia for n in device_names(ds)}
    originals = {v for v in originals if not any(v in d for d in devices)}
    tcia_subjects = set()
    for found in client.search_for_instances():
        study = found["0020000D"]["Value"][0]
        series = found["0020000E"]["Value"][0]
        sop = found["00080018"]["Value"][0]
        instance = client.retrieve_instance(study, series, sop)
        assert instance.PatientIdentityRemoved == "YES"
        with warnings.catch_warnings():  # bundled files keep their odd values (IS '1A')
            warnings.simplefilter("ignore")
            elements = list(instance.iterall())
        assert not any(e.tag.is_private for e in elements)
        assert not instance.get("PatientBirthDate")
        # every text value at any depth (names, IDs, free text; not UIDs or pixels, where a
        # short numeric ID turns up by chance) is free of every original identifier
        texts = [str(e.value) for e in elements if e.VR in TEXT_VRS]
        texts += [str(e.value) for e in instance.file_meta if e.VR in TEXT_VRS]
        for value in originals:
            leaks = [t for t in texts if value in t]
            assert not leaks, (value, leaks)
        if (
            instance.get("Modality") == "MR"
            and instance.get("Manufacturer") == "SIEMENS"
            and instance.get("ManufacturerModelName") == "MAGNETOM VISION plus"
        ):
            tcia_subjects.add(instance.PatientID)
    assert len(tcia_subjects) == 1, tcia_subjects  # one patient, one subject
    original_uids = {ds.SOPInstanceUID for ds in tcia}
    assert not original_uids & {f["00080018"]["Value"][0] for f in client.search_for_instances()}


def test_bad_input_through_the_gateway(deployment: Deployment) -> None:
    deployment.create_project("e2e-bad")
    admin = deployment.token()
    response = deployment.stow("e2e-bad", [b"definitely not DICOM"], admin)
    assert response.status_code == 400
    assert response.json()["00081198"]["Value"][0]["00081197"]["Value"] == [0xC000]
    assert deployment.stow("no-such-project", [b"x"], admin).status_code == 404
    assert deployment.stow("e2e-bad", [b"x"], {}).status_code == 401
    created = httpx.post(
        f"{deployment.url}/auth/users",
        headers=admin,
        json={"username": "outsider", "password": "outsider rides a blue bicycle"},
    )
    assert created.status_code in (201, 409)
    outsider = deployment.token("outsider", "outsider rides a blue bicycle")
    assert deployment.stow("e2e-bad", [b"x"], outsider).status_code == 403
    assert (
        httpx.get(f"{deployment.url}/dicomweb/e2e-bad/studies", headers=outsider).status_code == 403
    )
    for name in ("auth", "ingest", "api"):
        assert httpx.get(f"{deployment.services[name].url}/metrics").status_code == 200


def _bounded(call, seconds: float = 60):  # type: ignore[no-untyped-def]
    """Run a client call with a time bound: a server that makes it page forever fails."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(call).result(timeout=seconds)


def test_dicomweb_client_searches_pages_and_fetches(deployment: Deployment) -> None:
    """dicomweb-client's search, retrieve and metadata calls, each bounded in time; paging
    with ``get_remaining`` ends (it paged forever when offset was ignored)."""
    deployment.create_project("clients")
    admin = deployment.token()
    study, series = "2.25.7001", ("2.25.7002", "2.25.7003")
    files = [
        synthetic_instance(study_uid=study, series_uid=series[n % 2], sop_uid=f"2.25.71{n:02d}")
        for n in range(7)
    ]
    upload = deployment.stow("clients", files, admin).headers["X-Giftcloud-Upload"]
    assert wait_until_settled(deployment, "clients", [upload])[0]["archived"] == 7
    client = dicomweb(deployment, "clients")

    [found_study] = _bounded(client.search_for_studies)
    uid = found_study["0020000D"]["Value"][0]  # the de-identified study UID
    assert found_study["00201208"]["Value"] == [7]
    every = _bounded(lambda: client.search_for_instances(limit=2, get_remaining=True))
    assert len(every) == 7 and len({f["00080018"]["Value"][0] for f in every}) == 7
    of_study = _bounded(lambda: client.search_for_instances(uid, get_remaining=True))
    assert len(of_study) == 7
    found_series = _bounded(lambda: client.search_for_series(uid, get_remaining=True))
    assert sorted(s["00201209"]["Value"][0] for s in found_series) == [3, 4]
    one_series = found_series[0]["0020000E"]["Value"][0]
    in_series = _bounded(lambda: client.search_for_instances(uid, one_series))
    assert len(in_series) == found_series[0]["00201209"]["Value"][0]
    assert _bounded(lambda: client.search_for_studies(search_filters={"PatientID": "nobody"})) == []

    assert len(_bounded(lambda: client.retrieve_study(uid))) == 7
    assert len(_bounded(lambda: client.retrieve_series(uid, one_series))) == len(in_series)
    sop = in_series[0]["00080018"]["Value"][0]
    instance = _bounded(lambda: client.retrieve_instance(uid, one_series, sop))
    assert instance.SOPInstanceUID == sop and instance.PatientIdentityRemoved == "YES"
    as_stored = _bounded(
        lambda: client.retrieve_instance(
            uid, one_series, sop, media_types=(("application/dicom", "*"),)
        )
    )
    assert as_stored.SOPInstanceUID == sop
    assert len(_bounded(lambda: client.retrieve_study_metadata(uid))) == 7
    assert len(_bounded(lambda: client.retrieve_series_metadata(uid, one_series))) == len(in_series)
    metadata = _bounded(lambda: client.retrieve_instance_metadata(uid, one_series, sop))
    assert metadata["00080018"]["Value"] == [sop] and "BulkDataURI" in metadata["7FE00010"]

    # frames, bulk data and rendered images, as a viewer asks for them
    [frame] = _bounded(lambda: client.retrieve_instance_frames(uid, one_series, sop, [1]))
    assert frame == instance.PixelData
    [bulk] = _bounded(lambda: client.retrieve_bulkdata(metadata["7FE00010"]["BulkDataURI"]))
    assert bulk == instance.PixelData
    jpeg = _bounded(
        lambda: client.retrieve_instance_rendered(
            uid, one_series, sop, media_types=("image/jpeg",), params={"window": "40,400"}
        )
    )
    assert jpeg.startswith(b"\xff\xd8")
    png = _bounded(
        lambda: client.retrieve_instance_frames_rendered(
            uid, one_series, sop, [1], media_types=("image/png",)
        )
    )
    assert png.startswith(b"\x89PNG")
    thumbnail = httpx.get(
        f"{deployment.url}/dicomweb/clients/studies/{uid}/thumbnail", headers=admin
    )
    assert thumbnail.status_code == 200 and thumbnail.headers["content-type"] == "image/jpeg"

    # JPEG baseline (8-bit only) of 16-bit pixels: 406 with the reason
    jpeg = httpx.get(
        f"{deployment.url}/dicomweb/clients/studies/{uid}",
        headers={
            **admin,
            "Accept": 'multipart/related; type="application/dicom";'
            " transfer-syntax=1.2.840.10008.1.2.4.50",
        },
    )
    assert jpeg.status_code == 406 and "no encoding of 16-bit" in jpeg.json()["detail"]

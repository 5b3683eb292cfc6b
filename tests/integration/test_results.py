"""Results at a hub (issue: results back to the clinic — derived data in the archive): a
segmentation made with highdicom on the hub's copy of a site's images is kept and linked to
the instances it derives from; one that derives from instances the project does not hold is
refused with the reason and leaves nothing behind. On the real servers, through STOW-RS."""

import hashlib
import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from giftcloud_anonymise.app import build as build_anonymise
from giftcloud_api.app import build as build_api
from giftcloud_api.catalogue import derived
from giftcloud_archive.app import build as build_archive
from giftcloud_core.app import ACCESS_COOKIE
from giftcloud_core.events import ProjectCreated
from giftcloud_core.settings import BusSettings
from giftcloud_core.tokens import TokenSigner
from giftcloud_deid import Deidentifier, ProjectKeys
from giftcloud_ingest.app import build as build_ingest
from integration.conftest import eventually, running, settled
from integration.test_holes import hub, stow
from support.dicom_files import read
from support.results import ct_series, segmentation
from support.stack import Stack

Bearer = Callable[..., dict[str, str]]
PROJECT = "central"


async def test_a_result_is_kept_only_with_the_instances_it_derives_from(
    stack: Stack,
    signer: TokenSigner,
    bearer: Bearer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(derived, "GRACE_SECONDS", 1.0)  # how long a result waits: not 10 s
    assert derived.grace(BusSettings(max_retries=5, retry_base_seconds=0.5)) == 1.0
    runtime = hub(stack, signer, tmp_path / "objects")
    parts = [build_ingest(runtime), build_anonymise(runtime), build_archive(runtime)]
    parts.append(build_api(runtime))
    researcher = bearer("rhea", projects={PROJECT: "member"})
    site = Deidentifier(ProjectKeys.derive(b"s" * 32, PROJECT))
    images = [site.deidentify(f).data for f in ct_series(3, "R-1")]
    elsewhere = [site.deidentify(f).data for f in ct_series(3, "R-2")]  # never sent
    async with running(runtime, parts) as client:
        await runtime.bus.publish(ProjectCreated(project=PROJECT, correlation_id="t"))

        async def known() -> bool:
            answer = await client.get(f"/ingest/{PROJECT}/uploads", headers=researcher)
            return answer.status_code == 200

        await eventually(known, what="ingest learns the project")
        sent = await settled(
            client, PROJECT, await stow(client, PROJECT, images, researcher), researcher
        )
        assert sent["archived"] == 3, sent

        # made on the hub's copy, fetched by WADO-RS as a researcher would
        first = read(images[0])
        study, series = first.StudyInstanceUID, first.SeriesInstanceUID
        copies = []
        for data in images:
            sop = read(data).SOPInstanceUID
            fetched = await client.get(
                f"/dicomweb/{PROJECT}/studies/{study}/series/{series}/instances/{sop}",
                headers={**researcher, "Accept": "application/dicom"},
            )
            assert fetched.status_code == 200
            copies.append(fetched.content)
        seg = segmentation(copies)
        kept = await settled(
            client, PROJECT, await stow(client, PROJECT, [seg], researcher), researcher
        )
        assert kept["archived"] == 1 and not kept["rejected"], kept
        results = await client.get(
            f"/api/projects/{PROJECT}/studies/{study}/results", headers=researcher
        )
        assert results.status_code == 200, results.text
        [result] = results.json()
        assert result["kind"] == "segmentation"
        assert result["sop_uid"] == read(seg).SOPInstanceUID
        assert result["series_description"] == "lesion segmentation"
        assert result["sources"] == [{"series_uid": series, "instances": 3}]
        # and on the study's page, linked to the series it derives from
        token = researcher["Authorization"].split()[1]
        page = await client.get(
            f"/projects/{PROJECT}/studies/{study}", cookies={ACCESS_COOKIE: token}
        )
        assert page.status_code == 200, page.text[:300]
        assert '<h2 id="results">Results</h2>' in page.text
        assert "lesion segmentation" in page.text and "<td>segmentation</td>" in page.text
        assert f'/series/{series}">' in page.text and "(3 instance(s))" in page.text

        # one made on images the project does not hold: refused, with why, nothing kept
        stray = segmentation(elsewhere)
        # (sent twice in one request: the second copy is refused with the first)
        refused = await settled(
            client, PROJECT, await stow(client, PROJECT, [stray, stray], researcher), researcher
        )
        assert refused["archived"] == 0, refused
        [why, again] = refused["rejected"]
        assert why["reason"] == again["reason"], refused
        assert "may only derive from the project's instances" in why["reason"], why
        assert "names 3 the project does not hold" in why["reason"], why
        stray_ds = read(stray)
        gone = await client.get(
            f"/dicomweb/{PROJECT}/studies/{stray_ds.StudyInstanceUID}/series/"
            f"{stray_ds.SeriesInstanceUID}/instances/{stray_ds.SOPInstanceUID}",
            headers={**researcher, "Accept": "application/dicom"},
        )
        assert gone.status_code == 404
        archived = await runtime.store.list(runtime.settings.storage.buckets.archive, PROJECT)
        assert not [k for k in archived if stray_ds.SOPInstanceUID in k], archived

        # sent together with its sources (they reach the catalogue in the same message or
        # just before): kept
        together = [site.deidentify(f).data for f in ct_series(2, "R-3")]
        both = await settled(
            client,
            PROJECT,
            await stow(client, PROJECT, [*together, segmentation(together)], researcher),
            researcher,
        )
        assert both["archived"] == 3 and not both["rejected"], both


async def test_files_attached_with_their_provenance_and_read_as_images_are(
    stack: Stack, signer: TokenSigner, bearer: Bearer, tmp_path: Path
) -> None:
    runtime = hub(stack, signer, tmp_path / "objects")
    runtime.settings.limits.max_file_bytes = 64 * 1024
    parts = [build_ingest(runtime), build_anonymise(runtime), build_archive(runtime)]
    parts.append(build_api(runtime))
    member = bearer("mo", projects={PROJECT: "member"})
    reader = bearer("cora", projects={PROJECT: "collaborator"})
    owner = bearer("olga", projects={PROJECT: "owner"})
    stranger = bearer("sam", projects={"elsewhere": "owner"})
    site = Deidentifier(ProjectKeys.derive(b"s" * 32, PROJECT))
    images = [site.deidentify(f).data for f in ct_series(2, "F-1")]
    first = read(images[0])
    study, series = first.StudyInstanceUID, first.SeriesInstanceUID
    files = f"/api/projects/{PROJECT}/files"
    table = b"label,voxels\nlesion,32\n"
    async with running(runtime, parts) as client:
        await runtime.bus.publish(ProjectCreated(project=PROJECT, correlation_id="t"))

        async def known() -> bool:
            answer = await client.get(f"/ingest/{PROJECT}/uploads", headers=member)
            return answer.status_code == 200

        await eventually(known, what="ingest learns the project")
        await settled(client, PROJECT, await stow(client, PROJECT, images, member), member)

        def attach(who: dict, **form: str):  # type: ignore[no-untyped-def]
            return client.post(
                files,
                files={"file": ("volumes.csv", table, "text/csv")},
                data=form,
                headers=who,
            )

        made = await attach(
            member,
            study=study,
            inputs=f"{first.SOPInstanceUID}, {read(images[1]).SOPInstanceUID}",
            tool="lesion-volumes",
            tool_version="2.1",
            description="voxel counts per label",
        )
        assert made.status_code == 201, made.text
        attached = made.json()
        assert attached["subject"] == first.PatientID and attached["study_uid"] == study
        assert attached["series_uid"] == "" and attached["created_by"] == "mo"
        assert attached["inputs"] == [first.SOPInstanceUID, read(images[1]).SOPInstanceUID]
        assert attached["sha256"] == hashlib.sha256(table).hexdigest()
        on_series = await attach(member, series=series, tool="qc")
        assert on_series.json()["study_uid"] == study  # its parents filled in

        # refused with the reason: a collaborator, a stranger, an unknown study, a path, too big
        assert (await attach(reader, study=study)).status_code == 403
        assert (await attach(stranger, study=study)).status_code == 403
        unknown = await attach(member, study="1.2.3.4")
        assert unknown.status_code == 404 and "no study 1.2.3.4" in unknown.text
        pathy = await client.post(
            files, files={"file": ("../x.csv", table, "text/csv")}, headers=member
        )
        assert pathy.status_code == 400, pathy.text
        huge = await client.post(
            files, files={"file": ("big.bin", bytes(65 * 1024), "x/y")}, headers=member
        )
        assert huge.status_code == 413 and "MAX_FILE_BYTES" in huge.text

        # read as the images are: listed, fetched whole as an attachment, in the study's zip
        listed = (await client.get(files, params={"study": study}, headers=reader)).json()
        assert [f["id"] for f in listed] == [attached["id"], on_series.json()["id"]]
        fetched = await client.get(f"{files}/{attached['id']}", headers=reader)
        assert fetched.content == table
        assert fetched.headers["content-disposition"] == "attachment; filename*=UTF-8''volumes.csv"
        assert fetched.headers["content-type"] == "application/octet-stream"
        assert (await client.get(f"{files}/{attached['id']}", headers=stranger)).status_code == 403
        zipped = await client.get(
            f"/api/projects/{PROJECT}/download", params={"study": study}, headers=reader
        )
        names = zipfile.ZipFile(io.BytesIO(zipped.content)).namelist()
        entry = f"{first.PatientID}/{study}/files/{attached['id'][:8]}-volumes.csv"
        assert entry in names, names
        assert zipfile.ZipFile(io.BytesIO(zipped.content)).read(entry) == table
        assert sum(n.endswith(".dcm") for n in names) == 2
        token = reader["Authorization"].split()[1]
        page = await client.get(
            f"/projects/{PROJECT}/studies/{study}", cookies={ACCESS_COOKIE: token}
        )
        assert "volumes.csv" in page.text and "lesion-volumes 2.1" in page.text

        # an owner removes one; a member may not
        assert (await client.delete(f"{files}/{attached['id']}", headers=member)).status_code == 403
        assert (await client.delete(f"{files}/{attached['id']}", headers=owner)).status_code == 200
        assert (await client.get(f"{files}/{attached['id']}", headers=reader)).status_code == 404
        audit = (await client.get(f"/api/projects/{PROJECT}/audit", headers=owner)).json()
        actions = {e["action"] for e in audit}
        assert {"api.file.attach", "api.file.download", "api.file.remove"} <= actions, actions

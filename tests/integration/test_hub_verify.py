"""A hub in verify mode judges content against the profile a file declares (issue: a hub
that trusted markers archived a file whose markers were set and whose PatientName was the
MRN). Through STOW-RS, on the real servers, the way a site or a script would send."""

from collections.abc import Callable
from pathlib import Path

from giftcloud_anonymise.app import build as build_anonymise
from giftcloud_api.app import build as build_api
from giftcloud_archive.app import build as build_archive
from giftcloud_core.events import ProjectCreated
from giftcloud_core.tokens import TokenSigner
from giftcloud_deid import Deidentifier, Option, Profile, ProjectKeys
from giftcloud_deid.rules import DEFAULT_OPTIONS
from giftcloud_ingest.app import build as build_ingest
from integration.conftest import eventually, running
from integration.test_holes import hub, stow
from support.dicom_files import read, synthetic_instance, to_bytes
from support.planting import plant_reported_pid
from support.stack import Stack

Bearer = Callable[..., dict[str, str]]


async def test_a_hub_refuses_marked_files_that_carry_pid_and_keeps_what_a_site_made(
    stack: Stack, signer: TokenSigner, bearer: Bearer, tmp_path: Path
) -> None:
    runtime = hub(stack, signer, tmp_path / "objects")
    parts = [build_ingest(runtime), build_anonymise(runtime), build_archive(runtime)]
    parts.append(build_api(runtime))
    site = bearer("site", projects={"central": "member"})
    good = Deidentifier(ProjectKeys.derive(b"s" * 32, "central")).deidentify(
        synthetic_instance(patient_id="GOOD-1")
    )
    # the reported file: every marker set, the MRN as the subject, PID in free text; made by
    # a site whose profile removes descriptions, so the description planted in it is a
    # finding (under Clean Descriptors the hub cannot tell a name in one: README)
    without_descriptions = Profile(options=DEFAULT_OPTIONS - {Option.CLEAN_DESCRIPTORS})
    ds = read(
        Deidentifier(ProjectKeys.derive(b"s" * 32, "central"), without_descriptions)
        .deidentify(synthetic_instance(patient_id="BAD-1"))
        .data
    )
    expected = plant_reported_pid(ds)
    bad = to_bytes(ds)
    async with running(runtime, parts) as client:
        await runtime.bus.publish(ProjectCreated(project="central", correlation_id="t"))

        async def known() -> bool:
            response = await client.get("/ingest/central/uploads", headers=site)
            return response.status_code == 200

        await eventually(known, what="ingest learns the project")
        response = await stow(client, "central", [good.data, bad], site)
        assert response.status_code == 200, response.text
        upload_id = response.headers["X-Giftcloud-Upload"]
        status: dict[str, object] = {}

        async def settled() -> bool:
            nonlocal status
            answer = await client.get(f"/ingest/central/uploads/{upload_id}", headers=site)
            status = answer.json()
            return status["pending"] == 0

        await eventually(settled, what="both instances judged")
        assert status["archived"] == 1
        [rejected] = status["rejected"]  # type: ignore[misc]
        reason = rejected["reason"]
        for named in expected:
            assert named in reason, (named, reason)

        found = await client.get("/dicomweb/central/instances", headers=site)
        assert found.status_code == 200
        sops = [i["00080018"]["Value"][0] for i in found.json()]
        assert sops == [good.sop_uid]  # the file with PID is nowhere a client can read it
        assert b"MRN0012345" not in found.content

"""One bad instance never takes its neighbours out of the catalogue, and an upload never
says archived for what the catalogue does not hold (a NUL in a kept attribute used to
dead-letter a whole bundle whose other instances stayed invisible). On the real servers."""

import hashlib
import warnings
from collections.abc import Callable

import httpx
from giftcloud.client import multipart_related, stow_reasons
from giftcloud_anonymise.app import build as build_anonymise
from giftcloud_api.app import build as build_api
from giftcloud_archive.app import build as build_archive
from giftcloud_core.app import Runtime
from giftcloud_core.events import (
    ArchivedInstance,
    Event,
    InstanceRejected,
    InstancesArchived,
    InstancesCatalogued,
    ProjectCreated,
)
from giftcloud_ingest.app import build as build_ingest
from integration.conftest import eventually, next_message, running
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from support.dicom_files import read, synthetic_instance, to_bytes
from support.stack import Stack

Bearer = Callable[..., dict[str, str]]


def with_modality(modality: str, patient: str) -> bytes:
    ds = read(synthetic_instance(patient_id=patient))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns of the value we mean to send
        ds.Modality = modality
        return to_bytes(ds)


async def project_known(
    client: httpx.AsyncClient, runtime: Runtime, headers: dict[str, str]
) -> None:
    await runtime.bus.publish(ProjectCreated(project="nul", correlation_id="t"))

    async def known() -> bool:
        return (await client.get("/ingest/nul/uploads", headers=headers)).status_code == 200

    await eventually(known, what="ingest learns the project")


async def test_a_nul_in_a_kept_attribute_is_refused_and_its_neighbours_are_found(
    runtime: Runtime, bearer: Bearer
) -> None:
    headers = bearer("alice", projects={"nul": "member"})
    clean = with_modality("MR", "NUL-CLEAN")
    bad = with_modality("C\x00T", "NUL-BAD")
    assert b"C\x00T" in bad
    ds = read(synthetic_instance(patient_id="NUL-NESTED"))  # a NUL deeper down is dropped
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "T-A0100", "SRT", "Bra\x00in"
    ds.AnatomicRegionSequence = Sequence([code])
    nested = to_bytes(ds)
    parts = [build_ingest(runtime), build_anonymise(runtime), build_archive(runtime)]
    async with running(runtime, [*parts, build_api(runtime)]) as client:
        await project_known(client, runtime, headers)
        body, content_type = multipart_related([clean, bad, nested])
        response = await client.post(
            "/dicomweb/nul/studies", content=body, headers={**headers, "Content-Type": content_type}
        )
        assert response.status_code == 202, response.text  # some stored, one refused
        [reason] = stow_reasons(response.json())
        assert "(0008,0060) Modality holds a NUL character" in reason
        upload = response.headers["X-Giftcloud-Upload"]

        async def settled() -> bool:
            status = (await client.get(f"/ingest/nul/uploads/{upload}", headers=headers)).json()
            return status["archived"] == 2 and status["pending"] == 0

        await eventually(settled, what="both good instances archived and found")
        found = await client.get("/dicomweb/nul/instances", headers=headers)
        assert len(found.json()) == 2


async def test_an_instance_the_catalogue_cannot_record_is_rejected_alone(
    stack: Stack, runtime: Runtime, bearer: Bearer
) -> None:
    """Should anything still reach the catalogue that it cannot record (here: an event
    carrying a NUL that archive would have dropped), the rest of the bundle is recorded and
    said to be found, and the one is rejected with the reason: nothing is dead-lettered."""
    headers = bearer("alice", projects={"nul": "member"})

    def instance(n: int, modality: str) -> ArchivedInstance:
        study = f"2.25.{700 + n}"
        return ArchivedInstance(
            object_key=f"nul/{study}/{study}.1/{study}.1.1.dcm",
            received_key=f"nul/u1/{n:06d}.dcm",
            sha256=hashlib.sha256(str(n).encode()).hexdigest(),
            size=10,
            subject=f"SUBJ-{n}",
            study_uid=study,
            series_uid=f"{study}.1",
            sop_uid=f"{study}.1.1",
            sop_class_uid="1.2.840.10008.5.1.4.1.1.4",
            modality=modality,
            attributes={"00080060": {"vr": "CS", "Value": [modality]}},
        )

    async with running(runtime, [build_api(runtime)]) as client:
        await runtime.bus.publish(ProjectCreated(project="nul", correlation_id="t"))

        async def known() -> bool:
            return (await client.get("/dicomweb/nul/studies", headers=headers)).status_code in (
                200,
                204,
            )

        await eventually(known, what="api learns the project")
        await runtime.bus.publish(
            InstancesArchived(
                project="nul",
                correlation_id="u1",
                instances=(instance(1, "MR"), instance(2, "C\x00T"), instance(3, "CT")),
            )
        )
        told: list[Event] = [
            await next_message(stack, "ingest.outcomes"),
            await next_message(stack, "ingest.outcomes"),
            await next_message(stack, "ingest.outcomes"),
        ]
        catalogued = [e for e in told if isinstance(e, InstancesCatalogued)]
        rejected = [e for e in told if isinstance(e, InstanceRejected)]
        assert [i.received_key for e in catalogued for i in e.instances] == [
            "nul/u1/000001.dcm",
            "nul/u1/000003.dcm",
        ]
        [refusal] = rejected
        assert refusal.object_key == "nul/u1/000002.dcm"
        assert "the catalogue could not record it" in refusal.reason
        found = await client.get("/dicomweb/nul/instances", headers=headers)
        assert sorted(i["00080018"]["Value"][0] for i in found.json()) == [
            "2.25.701.1.1",
            "2.25.703.1.1",
        ]
        assert await runtime.bus.dead_letters("api.catalogue") == 0

"""anonymise, archive and api, each alone on the real servers, driven by the events they consume."""

import hashlib
from collections.abc import Callable

from giftcloud_anonymise.app import build as build_anonymise
from giftcloud_api.app import build as build_api
from giftcloud_archive.app import build as build_archive
from giftcloud_core.app import Runtime
from giftcloud_core.bundle import pack, unpack
from giftcloud_core.events import (
    ArchivedInstance,
    DeidentifiedPart,
    InstanceRejected,
    InstancesArchived,
    InstancesDeidentified,
    ProjectCreated,
)
from integration.conftest import eventually, next_message, raw_store, running
from support.dicom_files import read, synthetic_instance
from support.incoming import receive, received_event
from support.stack import Stack

Bearer = Callable[..., dict[str, str]]


async def test_anonymise_replaces_identifiers_and_clears_incoming(
    runtime: Runtime, stack: Stack
) -> None:
    buckets = runtime.settings.storage.buckets
    first = synthetic_instance(patient="Doe^Jane", patient_id="MRN0001")
    second = synthetic_instance(
        patient="Doe^Jane",
        patient_id="MRN0001",
        sop_uid="1.2.3",
        study_uid="1.2.4",
        series_uid="1.2.5",
    )
    async with running(runtime, [build_anonymise(runtime)]):
        sent = await receive(runtime, "proj", {"proj/u1/a.dcm": first, "proj/u1/b.dcm": second})
        event = await next_message(stack, "archive.instances")
        assert isinstance(event, InstancesDeidentified)
        outputs = unpack(await runtime.store.get(buckets.outgoing, event.object_key))
        assert [i.received_key for i in event.instances] == ["proj/u1/a.dcm", "proj/u1/b.dcm"]
        for instance, out, source in zip(event.instances, outputs, (first, second), strict=True):
            assert b"Doe^Jane" not in out and b"MRN0001" not in out
            ds = read(out)
            assert ds.PatientID == instance.subject and ds.SOPInstanceUID == instance.sop_uid
            assert instance.sop_uid != read(source).SOPInstanceUID
            assert instance.sha256 == hashlib.sha256(out).hexdigest()
        # the same patient is the same subject
        assert event.instances[0].subject == event.instances[1].subject

        async def gone() -> bool:
            return not await runtime.store.exists(buckets.incoming, sent.object_key)

        await eventually(gone, what="incoming bundle deleted")

        # a redelivered event finds nothing to do and changes nothing
        await runtime.bus.publish(sent)
        await receive(runtime, "proj", {"proj/u2/c.dcm": synthetic_instance(sop_uid="1.2.6")})
        after = await next_message(stack, "archive.instances")
        assert isinstance(after, InstancesDeidentified)
        # the redelivered bundle produced nothing
        assert [i.received_key for i in after.instances] == ["proj/u2/c.dcm"]


async def test_anonymise_quarantines_what_it_cannot_deidentify(
    runtime: Runtime, stack: Stack
) -> None:
    buckets = runtime.settings.storage.buckets
    files = {"proj/u1/bad.dcm": b"not dicom, Doe^Jane", "proj/u1/good.dcm": synthetic_instance()}
    async with running(runtime, [build_anonymise(runtime)]):
        sent = await receive(runtime, "proj", files)

        async def quarantined() -> bool:
            return await runtime.store.exists(buckets.quarantine, "proj/u1/bad.dcm")

        await eventually(quarantined, what="quarantined")
        rejected = await next_message(stack, "ingest.outcomes")
        assert (
            isinstance(rejected, InstanceRejected) and "not a well-formed DICOM" in rejected.reason
        )
        assert rejected.object_key == "proj/u1/bad.dcm"
        passed = await next_message(stack, "archive.instances")  # its neighbour went on
        assert isinstance(passed, InstancesDeidentified)
        assert [i.received_key for i in passed.instances] == ["proj/u1/good.dcm"]
        assert len(unpack(await runtime.store.get(buckets.outgoing, passed.object_key))) == 1
        at_rest = await raw_store(stack).get(buckets.quarantine, "proj/u1/bad.dcm")
        assert b"Doe^Jane" not in at_rest  # identifiable: encrypted

        async def gone() -> bool:
            return not await runtime.store.exists(buckets.incoming, sent.object_key)

        await eventually(gone, what="incoming bundle deleted")


async def test_anonymise_dead_letters_a_bundle_that_is_not_what_its_event_says(
    runtime: Runtime,
) -> None:
    buckets = runtime.settings.storage.buckets
    async with running(runtime, [build_anonymise(runtime)]):
        await runtime.store.put(buckets.incoming, "proj/u1/0000.bundle", pack([b"one file"]))
        await runtime.bus.publish(
            received_event("proj", "proj/u1/0000.bundle", {"a.dcm": b"x", "b.dcm": b"y"})
        )

        async def dead_lettered() -> bool:
            return await runtime.bus.dead_letters("anonymise.instances") == 1

        await eventually(dead_lettered, what="the bundle dead-lettered")
        # kept for an operator: identifiable data is never dropped silently
        assert await runtime.store.exists(buckets.incoming, "proj/u1/0000.bundle")


def deidentified(data: bytes, sop_uid: str) -> DeidentifiedPart:
    return DeidentifiedPart(
        received_key=f"proj/u1/{sop_uid}.dcm",
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        subject="SUBJ-A",
        study_uid="2.25.1",
        series_uid="2.25.2",
        sop_uid=sop_uid,
        sop_class_uid="1.2.840.10008.5.1.4.1.1.4",
    )


async def test_archive_lays_out_one_object_per_instance_and_sends_its_metadata(
    runtime: Runtime, stack: Stack
) -> None:
    buckets = runtime.settings.storage.buckets
    files = [
        synthetic_instance(study_uid="2.25.1", series_uid="2.25.2", sop_uid=uid)
        for uid in ("2.25.3", "2.25.4")
    ]
    event = InstancesDeidentified(
        project="proj",
        correlation_id="u1",
        object_key="proj/u1/0000.bundle",
        instances=(deidentified(files[0], "2.25.3"), deidentified(files[1], "2.25.4")),
    )
    async with running(runtime, [build_archive(runtime)]):
        await runtime.store.put(buckets.outgoing, event.object_key, pack(files))
        await runtime.bus.publish(event)
        archived = await next_message(stack, "api.catalogue")
        assert isinstance(archived, InstancesArchived)
        assert [i.object_key for i in archived.instances] == [
            "proj/2.25.1/2.25.2/2.25.3.dcm",
            "proj/2.25.1/2.25.2/2.25.4.dcm",
        ]
        assert [i.received_key for i in archived.instances] == [
            "proj/u1/2.25.3.dcm",
            "proj/u1/2.25.4.dcm",
        ]
        for instance, data in zip(archived.instances, files, strict=True):
            assert instance.modality == "MR" and instance.series_number == 1
            assert await runtime.store.get(buckets.archive, instance.object_key) == data
            assert instance.attributes["00080018"]["Value"] == [instance.sop_uid]
            assert "BulkDataURI" in instance.attributes["7FE00010"]
        # the archive holds the instances and nothing else
        assert await runtime.store.list(buckets.archive, "proj/") == [
            "proj/2.25.1/2.25.2/2.25.3.dcm",
            "proj/2.25.1/2.25.2/2.25.4.dcm",
        ]

        async def gone() -> bool:
            return not await runtime.store.exists(buckets.outgoing, event.object_key)

        await eventually(gone, what="outgoing bundle deleted")
        # redelivered once the bundle is gone: nothing more to do, nothing announced twice
        await runtime.bus.publish(event)
        other = InstancesDeidentified(
            project="proj",
            correlation_id="u2",
            object_key="proj/u2/0000.bundle",
            instances=(deidentified(files[0], "2.25.3"),),
        )
        await runtime.store.put(buckets.outgoing, other.object_key, pack(files[:1]))
        await runtime.bus.publish(other)
        after = await next_message(stack, "api.catalogue")
        assert isinstance(after, InstancesArchived) and after.correlation_id == "u2"


async def test_api_catalogue_qido_and_wado(runtime: Runtime, bearer: Bearer) -> None:
    """An archived instance, its DICOM JSON in the event: listed, searched and served."""
    buckets = runtime.settings.storage.buckets
    data = synthetic_instance(study_uid="2.25.10", series_uid="2.25.20", sop_uid="2.25.30")
    key = "proj/2.25.10/2.25.20/2.25.30.dcm"
    async with running(runtime, [build_api(runtime)]) as client:
        await runtime.store.put(buckets.archive, key, data)
        await runtime.bus.publish(ProjectCreated(project="proj", title="P", correlation_id="c"))
        instance = ArchivedInstance(
            object_key=key,
            attributes={"00080018": {"vr": "UI", "Value": ["2.25.30"]}},
            sha256="0" * 64,
            size=len(data),
            subject="SUBJ-A",
            study_uid="2.25.10",
            series_uid="2.25.20",
            sop_uid="2.25.30",
            sop_class_uid="1.2.840.10008.5.1.4.1.1.4",
            modality="MR",
            study_date="20200101",
        )
        archived = InstancesArchived(project="proj", correlation_id="u1", instances=(instance,))
        await runtime.bus.publish(archived)
        await runtime.bus.publish(archived)  # redelivered: still one instance
        reader = bearer(projects={"proj": "collaborator"})

        async def listed() -> bool:
            return bool((await client.get("/dicomweb/proj/studies", headers=reader)).json())

        await eventually(listed, what="study in the catalogue")
        [study] = (await client.get("/dicomweb/proj/studies", headers=reader)).json()
        assert study["0020000D"]["Value"] == ["2.25.10"] and study["00201208"]["Value"] == [1]
        assert study["00100020"]["Value"] == ["SUBJ-A"]
        assert (
            await client.get("/dicomweb/proj/studies?PatientID=SUBJ-B", headers=reader)
        ).json() == []
        assert (
            await client.get("/dicomweb/proj/studies?StudyDate=20191231-20200102", headers=reader)
        ).json()
        assert (
            await client.get("/dicomweb/proj/studies?StudyDate=20210101-", headers=reader)
        ).json() == []
        [series] = (
            await client.get("/dicomweb/proj/studies/2.25.10/series", headers=reader)
        ).json()
        assert series["00080060"]["Value"] == ["MR"]
        as_stored = {"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'}
        wado = await client.get(
            "/dicomweb/proj/studies/2.25.10/series/2.25.20/instances/2.25.30",
            headers={**reader, **as_stored},
        )
        assert wado.status_code == 200 and wado.headers["content-type"].startswith(
            "multipart/related"
        )
        assert data in wado.content
        bare = await client.get(
            "/dicomweb/proj/studies/2.25.10/series/2.25.20/instances/2.25.30",
            headers={**reader, "Accept": "application/dicom; transfer-syntax=*"},
        )
        assert bare.content == data
        # no syntax named: Explicit VR Little Endian (PS3.18 §8.7.3), the same instance
        default = await client.get(
            "/dicomweb/proj/studies/2.25.10/series/2.25.20/instances/2.25.30",
            headers={**reader, "Accept": "application/dicom"},
        )
        explicit = read(default.content)
        assert explicit.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
        assert explicit.SOPInstanceUID == "2.25.30"
        meta = await client.get(
            "/dicomweb/proj/studies/2.25.10/series/2.25.20/instances/2.25.30/metadata",
            headers=reader,
        )
        assert meta.json()[0]["00080018"]["Value"] == ["2.25.30"]
        assert (await client.get("/api/projects/proj/subjects", headers=reader)).json() == [
            {"label": "SUBJ-A", "studies": 1}
        ]

        assert (await client.get("/dicomweb/proj/studies")).status_code == 401
        assert (
            await client.get("/dicomweb/proj/studies", headers=bearer(projects={"x": "owner"}))
        ).status_code == 403
        assert (await client.get("/dicomweb/nope/studies", headers=reader)).status_code == 404
        missing = await client.get(
            "/dicomweb/proj/studies/2.25.10/series/2.25.20/instances/9.9", headers=reader
        )
        assert missing.status_code == 404

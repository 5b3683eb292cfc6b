"""anonymise, archive and api, each alone on the real servers, driven by the events they consume."""

import json
from collections.abc import Callable

from giftcloud_anonymise.app import build as build_anonymise
from giftcloud_api.app import build as build_api
from giftcloud_archive.app import build as build_archive
from giftcloud_core.app import Runtime
from giftcloud_core.bundle import pack
from giftcloud_core.events import (
    InstanceArchived,
    InstanceDeidentified,
    InstanceRejected,
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
        events = [await next_message(stack, "archive.instances") for _ in range(2)]
        assert all(isinstance(e, InstanceDeidentified) for e in events)
        by_name = {e.received_key: e for e in events if isinstance(e, InstanceDeidentified)}
        assert sorted(by_name) == ["proj/u1/a.dcm", "proj/u1/b.dcm"]
        for name, source in (("proj/u1/a.dcm", first), ("proj/u1/b.dcm", second)):
            event = by_name[name]
            out = await runtime.store.get(buckets.archive, event.object_key)
            assert b"Doe^Jane" not in out and b"MRN0001" not in out
            ds = read(out)
            assert ds.PatientID == event.subject and ds.SOPInstanceUID == event.sop_uid
            assert event.sop_uid != read(source).SOPInstanceUID
        # the same patient is the same subject
        assert by_name["proj/u1/a.dcm"].subject == by_name["proj/u1/b.dcm"].subject

        async def gone() -> bool:
            return not await runtime.store.exists(buckets.incoming, sent.object_key)

        await eventually(gone, what="incoming bundle deleted")

        # a redelivered event finds nothing to do and changes nothing
        await runtime.bus.publish(sent)
        await receive(runtime, "proj", {"proj/u2/c.dcm": synthetic_instance(sop_uid="1.2.6")})
        after = await next_message(stack, "archive.instances")
        assert isinstance(after, InstanceDeidentified)
        assert after.received_key == "proj/u2/c.dcm"  # the redelivered bundle produced nothing


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
        assert isinstance(passed, InstanceDeidentified)
        assert passed.received_key == "proj/u1/good.dcm"
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


async def test_archive_lays_out_instance_and_metadata(runtime: Runtime, stack: Stack) -> None:
    buckets = runtime.settings.storage.buckets
    data = synthetic_instance(study_uid="2.25.1", series_uid="2.25.2", sop_uid="2.25.3")
    async with running(runtime, [build_archive(runtime)]):
        key = "proj/2.25.1/2.25.2/2.25.3.dcm"  # where anonymise writes it
        await runtime.store.put(buckets.archive, key, data)
        await runtime.bus.publish(
            InstanceDeidentified(
                project="proj",
                correlation_id="u1",
                object_key=key,
                sha256="0" * 64,
                size=len(data),
                subject="SUBJ-A",
                study_uid="2.25.1",
                series_uid="2.25.2",
                sop_uid="2.25.3",
                sop_class_uid="1.2.840.10008.5.1.4.1.1.4",
            )
        )
        event = await next_message(stack, "api.catalogue")
        assert isinstance(event, InstanceArchived)
        assert event.object_key == "proj/2.25.1/2.25.2/2.25.3.dcm"
        assert event.modality == "MR" and event.series_number == 1
        assert await runtime.store.get(buckets.archive, event.object_key) == data
        metadata = json.loads(await runtime.store.get(buckets.archive, event.metadata_key))
        assert metadata["00080018"]["Value"] == ["2.25.3"]
        assert "BulkDataURI" in metadata["7FE00010"]


async def test_api_catalogue_qido_and_wado(runtime: Runtime, bearer: Bearer) -> None:
    buckets = runtime.settings.storage.buckets
    data = synthetic_instance(study_uid="2.25.10", series_uid="2.25.20", sop_uid="2.25.30")
    key = "proj/2.25.10/2.25.20/2.25.30.dcm"
    async with running(runtime, [build_api(runtime)]) as client:
        await runtime.store.put(buckets.archive, key, data)
        await runtime.store.put(
            buckets.archive, key[:-4] + ".json", b'{"00080018": {"vr": "UI", "Value": ["2.25.30"]}}'
        )
        await runtime.bus.publish(ProjectCreated(project="proj", title="P", correlation_id="c"))
        archived = InstanceArchived(
            project="proj",
            correlation_id="u1",
            object_key=key,
            metadata_key=key[:-4] + ".json",
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
        await runtime.bus.publish(archived)
        await runtime.bus.publish(archived)  # redelivered: still one instance
        reader = bearer(projects={"proj": "collaborator"})

        async def listed() -> bool:
            return (await client.get("/dicomweb/proj/studies", headers=reader)).status_code == 200

        await eventually(listed, what="study in the catalogue")
        [study] = (await client.get("/dicomweb/proj/studies", headers=reader)).json()
        assert study["0020000D"]["Value"] == ["2.25.10"] and study["00201208"]["Value"] == [1]
        assert study["00100020"]["Value"] == ["SUBJ-A"]
        assert (
            await client.get("/dicomweb/proj/studies?PatientID=SUBJ-B", headers=reader)
        ).status_code == 204
        assert (
            await client.get("/dicomweb/proj/studies?StudyDate=20191231-20200102", headers=reader)
        ).status_code == 200
        assert (
            await client.get("/dicomweb/proj/studies?StudyDate=2021-", headers=reader)
        ).status_code == 204
        [series] = (
            await client.get("/dicomweb/proj/studies/2.25.10/series", headers=reader)
        ).json()
        assert series["00080060"]["Value"] == ["MR"]
        wado = await client.get(
            "/dicomweb/proj/studies/2.25.10/series/2.25.20/instances/2.25.30", headers=reader
        )
        assert wado.status_code == 200 and wado.headers["content-type"].startswith(
            "multipart/related"
        )
        assert data in wado.content
        bare = await client.get(
            "/dicomweb/proj/studies/2.25.10/series/2.25.20/instances/2.25.30",
            headers={**reader, "Accept": "application/dicom"},
        )
        assert bare.content == data
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

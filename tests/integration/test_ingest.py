import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from giftcloud.client import multipart_related, stow_reasons
from giftcloud_core.app import Runtime
from giftcloud_core.bundle import unpack, upload_of
from giftcloud_core.events import InstancesReceived, ProjectCreated
from giftcloud_ingest.app import build
from giftcloud_ingest.receiving import bundles as ingest_bundles
from giftcloud_ingest.receiving.checks import Failed, Stored, check_instance
from giftcloud_ingest.receiving.service import Receiver
from giftcloud_ingest.receiving.uploads import UploadSession
from integration.conftest import eventually, next_message, raw_store, running
from support.dicom_files import pydicom_file, read, synthetic_instance, to_bytes
from support.infra import rabbitmq_start, rabbitmq_stop
from support.stack import Stack

Bearer = Callable[..., dict[str, str]]


@pytest.fixture
async def ingest(runtime: Runtime, bearer: Bearer) -> AsyncIterator[httpx.AsyncClient]:
    runtime.settings.ingest.max_request_bytes = 2_000_000
    async with running(runtime, [build(runtime)]) as client:
        await runtime.bus.publish(ProjectCreated(project="proj", correlation_id="t"))
        owner = bearer(projects={"proj": "owner"})

        async def known() -> bool:
            return (await client.get("/ingest/proj/uploads", headers=owner)).status_code == 200

        await eventually(known, what="ingest learns the project")
        yield client


async def stow(
    client: httpx.AsyncClient,
    files: list[bytes],
    headers: dict[str, str],
    project: str = "proj",
    path: str = "",
) -> httpx.Response:
    body, content_type = multipart_related(files)
    return await client.post(
        f"/dicomweb/{project}/studies{path}",
        content=body,
        headers={**headers, "Content-Type": content_type},
    )


def failures(response: httpx.Response) -> list[dict[str, Any]]:
    return list(response.json().get("00081198", {}).get("Value", []))


async def test_stored_instance_is_encrypted_at_rest_and_announced(
    ingest: httpx.AsyncClient, runtime: Runtime, stack: Stack, bearer: Bearer
) -> None:
    data = pydicom_file("CT_small.dcm").read_bytes()
    response = await stow(ingest, [data], bearer(projects={"proj": "member"}))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/dicom+json"
    stored = response.json()["00081199"]["Value"]
    assert stored[0]["00081155"]["Value"] == [read(data).SOPInstanceUID]

    event = await next_message(stack, "anonymise.instances")
    assert isinstance(event, InstancesReceived) and event.project == "proj"
    [part] = event.parts
    assert part.size == len(data) and part.sha256 == hashlib.sha256(data).hexdigest()
    upload = response.headers["X-Giftcloud-Upload"]
    assert part.name == f"proj/{upload}/000000.dcm"
    incoming = runtime.settings.storage.buckets.incoming
    at_rest = await raw_store(stack).get(incoming, event.object_key)
    assert b"CompressedSamples" not in at_rest and at_rest[128:132] != b"DICM"
    assert unpack(await runtime.store.get(incoming, event.object_key)) == [data]


async def test_many_instances_travel_in_bundles_in_their_order(
    ingest: httpx.AsyncClient,
    runtime: Runtime,
    stack: Stack,
    bearer: Bearer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ingest_bundles, "BUNDLE_PARTS", 2)
    files = [synthetic_instance(sop_uid=f"1.2.826.0.1.{n}") for n in range(5)]
    response = await stow(
        ingest, [*files[:2], b"junk", *files[2:]], bearer(projects={"proj": "owner"})
    )
    assert response.status_code == 202, response.text
    upload = response.headers["X-Giftcloud-Upload"]
    events = [await next_message(stack, "anonymise.instances") for _ in range(3)]
    incoming = runtime.settings.storage.buckets.incoming
    sent: dict[str, bytes] = {}
    for event in events:
        assert isinstance(event, InstancesReceived) and event.correlation_id == upload
        bundle = unpack(await runtime.store.get(incoming, event.object_key))
        assert len(bundle) == len(event.parts) <= 2
        sent |= {part.name: data for part, data in zip(event.parts, bundle, strict=True)}
    # named by their place in the request: the junk at index 2 is not among them
    assert sent == {
        f"proj/{upload}/{index:06d}.dcm": data
        for index, data in zip((0, 1, 3, 4, 5), files, strict=True)
    }


async def _incoming(runtime: Runtime) -> list[str]:
    return await runtime.store.list(runtime.settings.storage.buckets.incoming)


@pytest.mark.parametrize(
    ("files", "reason", "text"),
    [
        ([b"this is not DICOM at all"], 0xC000, "not a DICOM Part 10 file"),
        ([pydicom_file("MR_truncated.dcm").read_bytes()], 0xC000, "truncated"),
        ([pydicom_file("CT_small.dcm").read_bytes()[:3000]], 0xC000, "truncated"),
    ],
    ids=["not-dicom", "truncated-pixels", "truncated-header"],
)
async def test_unusable_parts_are_refused_with_reasons_and_nothing_is_stored(
    ingest: httpx.AsyncClient,
    runtime: Runtime,
    bearer: Bearer,
    files: list[bytes],
    reason: int,
    text: str,
) -> None:
    response = await stow(ingest, files, bearer(projects={"proj": "owner"}))
    assert response.status_code == 400
    [failure] = failures(response)
    assert failure["00081197"]["Value"] == [reason]
    assert text in stow_reasons(response.json())[0]
    assert await _incoming(runtime) == []


async def test_missing_sop_instance_uid(
    ingest: httpx.AsyncClient, runtime: Runtime, bearer: Bearer
) -> None:
    ds = read(synthetic_instance())
    del ds.SOPInstanceUID
    response = await stow(ingest, [to_bytes(ds)], bearer(projects={"proj": "owner"}))
    assert response.status_code == 400
    assert failures(response)[0]["00081197"]["Value"] == [0xA900]
    assert "SOPInstanceUID" in stow_reasons(response.json())[0]
    assert await _incoming(runtime) == []


async def test_mixed_batch_is_accepted_in_part(
    ingest: httpx.AsyncClient, runtime: Runtime, bearer: Bearer
) -> None:
    good = synthetic_instance()
    response = await stow(ingest, [good, b"junk"], bearer(projects={"proj": "owner"}))
    assert response.status_code == 202
    assert len(response.json()["00081199"]["Value"]) == 1 and len(failures(response)) == 1
    assert len(await _incoming(runtime)) == 1


async def test_instance_of_another_study_conflicts(
    ingest: httpx.AsyncClient, bearer: Bearer
) -> None:
    response = await stow(
        ingest,
        [synthetic_instance(study_uid="1.2.3.4")],
        bearer(projects={"proj": "owner"}),
        path="/1.2.3.5",
    )
    assert response.status_code == 409
    assert failures(response)[0]["00081197"]["Value"] == [0xC409]


async def test_access_rules(ingest: httpx.AsyncClient, bearer: Bearer, runtime: Runtime) -> None:
    files = [synthetic_instance()]
    assert (await stow(ingest, files, {})).status_code == 401
    assert (await stow(ingest, files, {"Authorization": "Bearer garbage"})).status_code == 401
    assert (
        await stow(ingest, files, bearer(projects={"proj": "owner"}), project="nope")
    ).status_code == 404
    assert (await stow(ingest, files, bearer(projects={"other": "owner"}))).status_code == 403
    assert (await stow(ingest, files, bearer(projects={"proj": "collaborator"}))).status_code == 403
    assert await _incoming(runtime) == []


async def test_oversized_and_wrong_media_type(
    ingest: httpx.AsyncClient, bearer: Bearer, runtime: Runtime
) -> None:
    owner = bearer(projects={"proj": "owner"})
    response = await stow(ingest, [b"\0" * 2_100_000], owner)
    assert response.status_code == 413 and "limit" in response.json()["detail"]
    response = await ingest.post(
        "/dicomweb/proj/studies",
        content=b"x",
        headers={**owner, "Content-Type": "application/json"},
    )
    assert response.status_code == 415
    assert await _incoming(runtime) == []


async def test_a_broker_that_cannot_take_the_bundle_fails_its_instances_and_keeps_nothing(
    ingest: httpx.AsyncClient, runtime: Runtime, bearer: Bearer
) -> None:
    files = [synthetic_instance(), synthetic_instance()]
    await asyncio.to_thread(rabbitmq_stop)
    try:
        response = await stow(ingest, [*files, b"junk"], bearer(projects={"proj": "owner"}))
    finally:
        await asyncio.to_thread(rabbitmq_start)
    assert response.status_code == 400, response.text
    reasons = sorted(f["00081197"]["Value"][0] for f in failures(response))
    assert reasons == [0xA700, 0xA700, 0xC000]  # out of resources twice, the junk refused
    assert "try again" in stow_reasons(response.json())[1]
    assert await _incoming(runtime) == []  # the stored bundle was taken back


async def test_a_stow_answer_is_valid_dicom_json_and_each_instance_has_a_retrieve_url(
    ingest: httpx.AsyncClient, runtime: Runtime, bearer: Bearer
) -> None:
    import warnings

    from giftcloud.client import stow_reasons
    from giftcloud_core.events import CataloguedInstance, InstancesCatalogued
    from pydicom import Dataset

    member = bearer(projects={"proj": "member"})
    good = pydicom_file("CT_small.dcm").read_bytes()
    response = await stow(ingest, [b"no DICOM here", good], member)
    assert response.status_code == 202
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # valid DICOM JSON: not even a validation warning
        answer = Dataset.from_json(response.json())
    [failed] = answer.FailedSOPSequence
    assert failed.FailureReason == 0xC000 and len(failed.ErrorComment) <= 64
    assert "DICM" in stow_reasons(response.json())[0]  # the whole reason, in a private UT
    [stored] = answer.ReferencedSOPSequence
    upload = response.headers["X-Giftcloud-Upload"]
    assert response.headers["link"].endswith(f'/ingest/proj/uploads/{upload}>; rel="status"')
    retrieve = stored.RetrieveURL.split("testserver", 1)[-1].split(":", 1)[-1]
    retrieve = retrieve[retrieve.index("/ingest/") :]
    assert retrieve == f"/ingest/proj/uploads/{upload}/instances/1"
    pending = await ingest.get(retrieve, headers=member)
    assert pending.status_code == 404 and "not archived yet" in pending.json()["detail"]

    # archived under its de-identified UIDs and in the catalogue: the RetrieveURL leads there
    await runtime.bus.publish(
        InstancesCatalogued(
            project="proj",
            correlation_id=upload,
            instances=(
                CataloguedInstance(
                    received_key=f"proj/{upload}/000001.dcm",
                    study_uid="2.25.1",
                    series_uid="2.25.2",
                    sop_uid="2.25.3",
                ),
            ),
        )
    )

    async def archived() -> bool:
        found = await ingest.get(retrieve, headers=member)
        return found.status_code == 303

    await eventually(archived, what="the RetrieveURL leads to the archived instance")
    found = await ingest.get(retrieve, headers=member)
    assert found.headers["location"].endswith(
        "/dicomweb/proj/studies/2.25.1/series/2.25.2/instances/2.25.3"
    )


async def test_what_the_profile_decides_from_a_header_is_refused_at_stow_time(
    runtime: Runtime, bearer: Bearer, tmp_path
) -> None:
    from giftcloud.client import stow_reasons

    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "ct-only.yaml").write_text("sop_classes: [1.2.840.10008.5.1.4.1.1.2]\n")
    runtime.settings.anonymise.profiles_dir = profiles
    async with running(runtime, [build(runtime)]) as client:
        for project in ("ct-only", "proj"):
            await runtime.bus.publish(ProjectCreated(project=project, correlation_id="t"))
        owner = bearer(projects={"ct-only": "owner", "proj": "owner"})

        async def known() -> bool:
            return (await client.get("/ingest/proj/uploads", headers=owner)).status_code == 200

        await eventually(known, what="ingest learns the projects")
        mr = synthetic_instance()
        refused = await stow(client, [mr], owner, project="ct-only")
        assert refused.status_code == 400
        [item] = refused.json()["00081198"]["Value"]
        assert item["00081197"]["Value"] == [0x0122]
        assert "allow-list" in stow_reasons(refused.json())[0]
        # a secondary capture without BurnedInAnnotation: no rule covers what it may show
        capture = read(synthetic_instance())
        capture.SOPClassUID = capture.file_meta.MediaStorageSOPClassUID = (
            "1.2.840.10008.5.1.4.1.1.7"
        )
        capture.Modality = "OT"
        burned = await stow(client, [to_bytes(capture)], owner)
        assert burned.status_code == 400
        assert "burned-in text" in stow_reasons(burned.json())[0]
        assert (await stow(client, [mr], owner)).status_code == 200


async def test_a_bundle_stored_but_never_announced_is_swept_away(
    ingest: httpx.AsyncClient, runtime: Runtime, bearer: Bearer
) -> None:
    """A process that dies between a bundle's object and its message leaves an object no
    message names (and an upload never acknowledged). Each bundle is recorded as pending
    until its message is out; what stays pending past ``orphan_seconds`` is removed."""
    from datetime import UTC, datetime, timedelta

    from giftcloud_ingest.models import PendingBundle
    from sqlmodel import select

    response = await stow(ingest, [synthetic_instance()], bearer(projects={"proj": "owner"}))
    assert response.status_code == 200, response.text
    async with runtime.db.session() as session:  # announced: no longer pending
        assert (await session.exec(select(PendingBundle))).all() == []
    announced = await _incoming(runtime)

    bucket = runtime.settings.storage.buckets.incoming
    long_ago = datetime.now(UTC) - timedelta(minutes=11)
    for key, begun in (("proj/dead/0000.bundle", long_ago), ("proj/live/0000.bundle", None)):
        await runtime.store.put(bucket, key, b"a bundle no message names")
        async with runtime.db.session() as session:
            session.add(PendingBundle(key=key, created_at=begun or datetime.now(UTC)))
    receiver = Receiver(runtime.settings, runtime.db, runtime.bus, runtime.store)
    assert await receiver.bundles.sweep_orphans(runtime.settings.ingest.orphan_seconds) == 1
    left = await _incoming(runtime)
    assert "proj/dead/0000.bundle" not in left
    assert "proj/live/0000.bundle" in left  # may still be on its way: not touched
    assert all(key in left for key in announced)
    # the sole ingest (giftcloud up) removes everything left at its start
    assert await receiver.bundles.sweep_orphans(0) == 1
    assert "proj/live/0000.bundle" not in await _incoming(runtime)


async def _senders(runtime: Runtime, count: int) -> list[UploadSession]:
    from giftcloud_core.tokens import Principal

    receiver = Receiver(runtime.settings, runtime.db, runtime.bus, runtime.store)
    return [
        await receiver.open_upload(
            "proj", Principal(subject=f"dicom:AE{n}"), source="dimse", sender=f"dicom:AE{n}@x"
        )
        for n in range(count)
    ]


def _checked(data: bytes) -> Stored | Failed:
    return check_instance(data, None, 10**8, None)


async def test_senders_that_wait_for_each_answer_share_bundles(
    ingest: httpx.AsyncClient, runtime: Runtime, stack: Stack
) -> None:
    """Six associations at once, three instances each, each waiting for its answer: every
    instance is announced once under its own upload, in fewer bundles than instances."""
    uploads = await _senders(runtime, 6)

    async def association(upload: UploadSession) -> list[object]:
        answers: list[object] = []
        for _ in range(3):
            data = synthetic_instance()
            answers.append(await upload.add_checked(data, _checked(data)))
        return answers

    answers = await asyncio.gather(*(association(u) for u in uploads))
    assert all(isinstance(a, Stored) for each in answers for a in each)
    events = []
    while sum(len(e.parts) for e in events) < 18:
        event = await next_message(stack, "anonymise.instances")
        assert isinstance(event, InstancesReceived) and event.source == "dimse"
        events.append(event)
    names = [p.name for e in events for p in e.parts]
    assert len(events) < 18 and len(set(names)) == 18  # shared, none twice
    for upload in uploads:
        upload_id = upload.result.upload_id
        assert sum(upload_of(n) == upload_id for n in names) == 3
        result = await upload.finish()
        assert len(result.stored) == 3
        status = await upload.intake.records.status("proj", upload_id)
        assert status["accepted"] == 3 and str(status["source"]).startswith("dicom:AE")


async def test_a_waiting_sender_is_told_out_of_resources_when_the_broker_is_down(
    ingest: httpx.AsyncClient, runtime: Runtime
) -> None:
    [upload] = await _senders(runtime, 1)
    data = synthetic_instance()
    await asyncio.to_thread(rabbitmq_stop)
    try:
        answer = await upload.add_checked(data, _checked(data))
    finally:
        await asyncio.to_thread(rabbitmq_start)
    assert isinstance(answer, Failed) and answer.reason == 0xA700
    assert await _incoming(runtime) == []  # nothing half-stored


async def test_a_retrieval_is_refused_where_there_is_no_dicom_node(
    ingest: httpx.AsyncClient, bearer: Bearer
) -> None:
    response = await ingest.post(
        "/ingest/proj/retrievals",
        json={"node": "pacs", "queries": [{"AccessionNumber": "A1"}]},
        headers=bearer(projects={"proj": "owner"}),
    )
    assert response.status_code == 409 and "no DICOM node" in response.text

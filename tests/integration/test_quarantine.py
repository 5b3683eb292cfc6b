"""A project's quarantine (issue: the second hour — refusal reasons lost): its owners review
what de-identification refused, release it to be processed again under the rules of now, or
delete it. On the real servers, every service a part of it: ingest (the upload's outcomes),
anonymise (the quarantine), archive and api (the catalogue's list).

How a file passes ingest's check and is still refused by the engine: ingest admits by the
profile it last heard of, so between an owner's withdrawal of an attestation and ingest
hearing of it, a file is admitted that anonymise refuses. The test holds ingest there by
telling it of a later profile that still attests ultrasound."""

from collections.abc import Callable

import httpx
from giftcloud_anonymise.app import build as build_anonymise
from giftcloud_api.app import build as build_api
from giftcloud_api.models import Quarantined
from giftcloud_archive.app import build as build_archive
from giftcloud_core.app import Runtime
from giftcloud_core.events import ProfileChanged, ProjectCreated
from giftcloud_ingest.app import build as build_ingest
from integration.conftest import eventually, running, settled
from integration.test_holes import stow
from sqlmodel import select
from support.dicom_files import ultrasound

Bearer = Callable[..., dict[str, str]]
PROJECT = "choices"
QUARANTINE = f"/anonymise/projects/{PROJECT}/quarantine"


async def listed_in_catalogue(runtime: Runtime) -> set[str]:
    async with runtime.db.session() as session:
        rows = (await session.exec(select(Quarantined).where(Quarantined.project == PROJECT))).all()
    return {row.object_key for row in rows}


async def test_owners_review_release_and_delete_what_deidentification_refused(
    runtime: Runtime, bearer: Bearer
) -> None:
    parts = [build_ingest(runtime), build_anonymise(runtime), build_archive(runtime)]
    parts.append(build_api(runtime))
    owner = bearer("olive", projects={PROJECT: "owner"})
    member = bearer("mel", projects={PROJECT: "member"})
    async with running(runtime, parts) as client:
        await runtime.bus.publish(ProjectCreated(project=PROJECT, correlation_id="t"))

        async def known() -> bool:
            return (await client.get(QUARANTINE, headers=owner)).status_code == 200

        await eventually(known, what="anonymise learns the project")
        # ingest still believes ultrasound attested; anonymise's engine does not
        await runtime.bus.publish(
            ProfileChanged(
                project=PROJECT, correlation_id="t", version=99, burned_in_attested=("US",)
            )
        )

        sent: list[httpx.Response] = []

        async def admitted() -> bool:
            answer = await stow(client, PROJECT, [ultrasound("US-1"), ultrasound("US-2")], member)
            sent.append(answer)
            return answer.status_code == 200

        await eventually(admitted, what="ingest admits the ultrasound")
        status = await settled(client, PROJECT, sent[-1], member)
        assert status["archived"] == 0 and len(status["rejected"]) == 2, status
        assert all("burned-in text" in r["reason"] for r in status["rejected"]), status

        # the owners' list: each with its upload, its number there and the reason
        held = sorted(
            (await client.get(QUARANTINE, headers=owner)).json(), key=lambda h: h["index"]
        )
        assert [(h["upload"], h["index"], h["state"]) for h in held] == [
            (status["id"], 0, "held"),
            (status["id"], 1, "held"),
        ], held
        assert all("no burned-in text rule covers it" in h["reason"] for h in held)
        first, second = (h["key"] for h in held)
        assert await listed_in_catalogue(runtime) == {first, second}

        # what an owner needs to judge one, and nothing of the patient
        described = await client.get(f"{QUARANTINE}/{first}", headers=owner)
        assert described.status_code == 200, described.text
        assert described.json()["modality"] == "US"
        assert described.json()["sop_class"] == "MR Image Storage"
        assert "Doe" not in described.text and "US-1" not in described.text

        # members see neither the list nor a file; nor act on them
        assert (await client.get(QUARANTINE, headers=member)).status_code == 403
        assert (await client.get(f"{QUARANTINE}/{first}", headers=member)).status_code == 403
        chosen = {"keys": [first]}
        released = await client.post(f"{QUARANTINE}/release", json=chosen, headers=member)
        assert released.status_code == 403
        missing = {"keys": [f"{PROJECT}/nowhere/0.dcm"]}
        assert (
            await client.post(f"{QUARANTINE}/release", json=missing, headers=owner)
        ).status_code == 404

        # released under the rules of now, unchanged: back in quarantine with the reason
        released = await client.post(f"{QUARANTINE}/release", json=chosen, headers=owner)
        assert released.json() == {"how": "released", "keys": [first]}, released.text
        again = await client.post(f"{QUARANTINE}/release", json=chosen, headers=owner)
        assert again.status_code in (200, 409), again.text  # 409 while under way
        releases = 2 if again.status_code == 200 else 1

        async def held_again() -> bool:
            states = {
                h["key"]: h["state"] for h in (await client.get(QUARANTINE, headers=owner)).json()
            }
            return states.get(first) == "held"

        await eventually(held_again, what="the unchanged file refused again")
        assert [h["key"] for h in (await client.get(QUARANTINE, headers=owner)).json()] == [
            second,
            first,
        ]  # oldest first: the first was refused again just now

        # an owner attests ultrasound; released now, it is archived and its upload says so
        profile = f"/anonymise/projects/{PROJECT}/profile"
        on = [
            o["name"]
            for o in (await client.get(profile, headers=owner)).json()["options"]
            if o["on"]
        ]
        attest = {"options": on, "burned_in_attested": ["US"]}
        assert (await client.put(profile, json=attest, headers=owner)).status_code == 200
        released = await client.post(f"{QUARANTINE}/release", json=chosen, headers=owner)
        assert released.status_code == 200, released.text

        async def archived() -> bool:
            answer = await client.get(f"/ingest/{PROJECT}/uploads/{status['id']}", headers=member)
            return answer.json()["archived"] == 1

        await eventually(archived, what="the released file archived")
        upload = (
            await client.get(f"/ingest/{PROJECT}/uploads/{status['id']}", headers=member)
        ).json()
        assert [r["index"] for r in upload["rejected"]] == [1], upload
        found = (await client.get(f"/dicomweb/{PROJECT}/instances", headers=member)).json()
        assert len(found) == 1
        assert not await runtime.store.exists(runtime.settings.storage.buckets.quarantine, first)

        # the other deleted for good: gone from every list, its upload keeps the rejection
        deleted = await client.post(f"{QUARANTINE}/delete", json={"keys": [second]}, headers=owner)
        assert deleted.json() == {"how": "deleted", "keys": [second]}, deleted.text
        assert (await client.get(QUARANTINE, headers=owner)).json() == []
        assert not await runtime.store.exists(runtime.settings.storage.buckets.quarantine, second)
        assert (
            await client.post(f"{QUARANTINE}/release", json={"keys": [second]}, headers=owner)
        ).status_code == 404

        async def catalogue_cleared() -> bool:
            return await listed_in_catalogue(runtime) == set()

        await eventually(catalogue_cleared, what="the catalogue's list cleared")

        # both in the audit trail, by whom
        async def audited() -> list[str]:
            answer = await client.get(f"/api/projects/{PROJECT}/audit", headers=owner)
            return sorted(
                e["action"] for e in answer.json() if e["action"].startswith("anonymise.quarantine")
            )

        expected = ["anonymise.quarantine.delete"] + ["anonymise.quarantine.release"] * (
            releases + 1
        )

        async def all_audited() -> bool:
            return await audited() == expected

        await eventually(all_audited, what="releases and the deletion audited")

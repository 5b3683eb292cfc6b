"""A project's owners choose its de-identification on its page and by API (issue: the second
hour — descriptions gone; a refused ultrasound with no next step). On the real servers: the
choice reaches ingest's check on arrival and anonymise's engine, is owners-only and audited."""

from collections.abc import Callable

from giftcloud_anonymise.app import build as build_anonymise
from giftcloud_api.app import build as build_api
from giftcloud_archive.app import build as build_archive
from giftcloud_core.app import Runtime
from giftcloud_core.events import ProjectCreated
from giftcloud_ingest.app import build as build_ingest
from integration.conftest import eventually, running, settled
from integration.test_holes import stow
from pydicom.dataset import Dataset
from support.dicom_files import read, synthetic_instance, to_bytes, ultrasound

Bearer = Callable[..., dict[str, str]]
PROJECT = "choices"
PROFILE = f"/anonymise/projects/{PROJECT}/profile"


def described(patient_id: str, description: str) -> bytes:
    ds: Dataset = read(synthetic_instance(patient="Quill^Ada", patient_id=patient_id))
    ds.StudyDescription = description
    return to_bytes(ds)


async def test_owners_choose_options_and_attestations_and_every_part_applies_them(
    runtime: Runtime, bearer: Bearer
) -> None:
    parts = [build_ingest(runtime), build_anonymise(runtime), build_archive(runtime)]
    parts.append(build_api(runtime))
    owner = bearer("olive", projects={PROJECT: "owner"})
    member = bearer("mel", projects={PROJECT: "member"})
    reader = bearer("colin", projects={PROJECT: "collaborator"})
    async with running(runtime, parts) as client:
        await runtime.bus.publish(ProjectCreated(project=PROJECT, correlation_id="t"))

        async def known() -> bool:
            answer = await client.get(PROFILE, headers=reader)
            return answer.status_code == 200

        await eventually(known, what="anonymise learns the project")
        state = (await client.get(PROFILE, headers=reader)).json()
        assert state["source"] == "default" and state["version"] == 0
        on = {o["name"] for o in state["options"] if o["on"]}
        assert "clean_descriptors" in on  # descriptions kept by default, cleaned
        assert (
            await client.get("/anonymise/projects/nowhere/profile", headers=owner)
        ).status_code == 404

        # an ultrasound without BurnedInAnnotation: refused at arrival, with its way out
        refused = await stow(client, PROJECT, [ultrasound("US-1")], member)
        assert refused.status_code in (400, 409), refused.text  # none stored
        assert "Next step: a project owner attests that the project's ultrasound images" in (
            refused.text
        )

        # only an owner chooses; a bad choice is a 400 with the reason
        attest = {"options": sorted(on), "burned_in_attested": ["US"]}
        assert (await client.put(PROFILE, json=attest, headers=member)).status_code == 403
        assert (await client.put(PROFILE, json=attest, headers=reader)).status_code == 403
        bad = await client.put(PROFILE, json={"options": ["keep_everything"]}, headers=owner)
        assert bad.status_code == 400 and "options are:" in bad.json()["detail"]
        chosen = await client.put(PROFILE, json=attest, headers=owner)
        assert chosen.status_code == 200, chosen.text
        [us] = [a for a in chosen.json()["burned_in"] if a["kind"] == "US"]
        assert us["attested"] and us["by"] == "olive" and us["at"]
        assert chosen.json()["source"] == "owners" and chosen.json()["version"] == 1

        # ingest learns it from the event, and the engine applies it
        async def admitted() -> bool:
            answer = await stow(client, PROJECT, [ultrasound("US-2")], member)
            return answer.status_code == 200

        await eventually(admitted, what="ingest admits the attested ultrasound")
        sops = {
            i["00080060"]["Value"][0]
            for i in (await client.get(f"/dicomweb/{PROJECT}/instances", headers=reader)).json()
        }

        async def archived() -> bool:
            nonlocal sops
            answer = await client.get(f"/dicomweb/{PROJECT}/instances", headers=reader)
            sops = {i["00080060"]["Value"][0] for i in answer.json()}
            return "US" in sops

        await eventually(archived, what="the attested ultrasound is archived")

        # descriptions: kept and cleaned by default; removed once an owner turns it off
        kept = await stow(client, PROJECT, [described("D-1", "CT HEAD Ada Quill")], member)
        assert (await settled(client, PROJECT, kept, member))["archived"] == 1
        off = {"options": sorted(on - {"clean_descriptors"}), "burned_in_attested": ["US"]}
        assert (await client.put(PROFILE, json=off, headers=owner)).status_code == 200
        gone = await stow(client, PROJECT, [described("D-2", "CT HEAD Ada Quill")], member)
        assert (await settled(client, PROJECT, gone, member))["archived"] == 1
        studies = (
            await client.get(
                f"/dicomweb/{PROJECT}/studies", params={"includefield": "00081030"}, headers=reader
            )
        ).json()
        descriptions = sorted(s.get("00081030", {}).get("Value", [""])[0] for s in studies)
        # the US study's "Study of Doe^Jane" and the first kept, the patient's name taken
        # out; the second without its description
        assert descriptions == ["", "CT HEAD", "Study of"], descriptions

        # every choice is in the audit trail, with what changed
        async def audited() -> list[dict]:
            answer = await client.get(f"/api/projects/{PROJECT}/audit", headers=owner)
            return [e for e in answer.json() if e["action"] == "anonymise.profile"]

        async def both() -> bool:
            return len(await audited()) == 2

        await eventually(both, what="both choices audited")
        details = sorted(e["detail"] for e in await audited())
        assert any(d.startswith("attested US: no burned-in text") for d in details), details
        assert any(d.startswith("clean_descriptors off") for d in details), details
        assert all(e["actor"] == "olive" for e in await audited())

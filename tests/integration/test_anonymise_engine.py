"""anonymise with the Annex E engine on the real servers: project profiles, the sealed
re-identification vault (reidentifier role only, audited), and a hub's verify mode."""

from collections.abc import Callable
from pathlib import Path

from giftcloud_anonymise.app import build as build_anonymise
from giftcloud_anonymise.models import ReidentificationAudit, VaultEntry
from giftcloud_core.app import Runtime
from giftcloud_core.bundle import unpack
from giftcloud_core.events import (
    AuditRecorded,
    InstanceRejected,
    InstancesDeidentified,
    ProjectCreated,
)
from giftcloud_core.tokens import SignerJwks, TokenSigner, TokenVerifier
from giftcloud_deid.vault import generate_keypair
from integration.conftest import eventually, next_message, running
from sqlmodel import select
from support.dicom_files import read, synthetic_instance
from support.incoming import receive
from support.stack import Stack

Bearer = Callable[..., dict[str, str]]


def runtime_with(stack: Stack, signer: TokenSigner, **env: str) -> Runtime:
    stack.extra.update(env)
    verifier = TokenVerifier(SignerJwks(lambda: signer), "giftcloud", "giftcloud")
    return Runtime(stack.settings(), verifier=verifier)


async def test_vault_profiles_and_reidentification(
    stack: Stack, signer: TokenSigner, bearer: Bearer, tmp_path: Path
) -> None:
    private, public = generate_keypair()
    (tmp_path / "vault.pem").write_bytes(private)
    (tmp_path / "vault.pub").write_bytes(public)
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    # project "ct-only" accepts CT images only; the synthetic instances are MR
    (profiles / "ct-only.yaml").write_text(
        "name: ct-only\nsop_classes: [1.2.840.10008.5.1.4.1.1.2]\n"
    )
    runtime = runtime_with(
        stack,
        signer,
        GIFTCLOUD_ANONYMISE__VAULT_PUBLIC_KEY=str(tmp_path / "vault.pub"),
        GIFTCLOUD_ANONYMISE__VAULT_PRIVATE_KEY=str(tmp_path / "vault.pem"),
        GIFTCLOUD_ANONYMISE__PROFILES_DIR=str(profiles),
    )
    source = synthetic_instance(
        patient="Vault^Vera", patient_id="MRN-VAULT-1", study_uid="1.2.826.0.1.7"
    )
    async with running(runtime, [build_anonymise(runtime)]) as client:
        await runtime.bus.publish(ProjectCreated(project="proj", correlation_id="t"))
        # two images of one study in one bundle: one vault record
        neighbour = synthetic_instance(
            patient="Vault^Vera", patient_id="MRN-VAULT-1", study_uid="1.2.826.0.1.7"
        )
        await receive(runtime, "proj", {"proj/u1/a.dcm": source, "proj/u1/b.dcm": neighbour})
        deidentified = await next_message(stack, "archive.instances")
        assert isinstance(deidentified, InstancesDeidentified)
        event, second = deidentified.instances
        assert event.study_uid == second.study_uid and event.sop_uid != second.sop_uid

        async with runtime.db.session() as session:
            sealed = (await session.exec(select(VaultEntry))).all()
        assert len(sealed) == 1 and b"MRN-VAULT-1" not in sealed[0].sealed

        url = f"/anonymise/reidentify/proj/{event.subject}"
        reader = bearer("rita", projects={"proj": "member"}, roles=["reidentifier"])
        response = await client.get(url, headers=reader)
        assert response.status_code == 200, response.text
        [record] = response.json()["records"]
        assert record["patient_id"] == "MRN-VAULT-1"
        assert record["name"] == "Vault^Vera"
        assert record["study_uid"] == read(source).StudyInstanceUID
        assert record["pseudonymised_study_uid"] == event.study_uid

        # an admin or a project owner without the role may not; nor may a reidentifier elsewhere
        admin = bearer("root", roles=["admin"])
        assert (await client.get(url, headers=admin)).status_code == 403
        owner = bearer("olga", projects={"proj": "owner"})
        assert (await client.get(url, headers=owner)).status_code == 403
        stranger = bearer("sam", projects={"other": "member"}, roles=["reidentifier"])
        assert (await client.get(url, headers=stranger)).status_code == 403
        missing = await client.get("/anonymise/reidentify/proj/SUBJ-NOBODY", headers=reader)
        assert missing.status_code == 404
        assert (await client.get(url)).status_code == 401

        async with runtime.db.session() as session:
            audits = (await session.exec(select(ReidentificationAudit))).all()
        assert [(a.username, a.subject, a.records) for a in audits] == [
            ("rita", event.subject, 1),
            ("rita", "SUBJ-NOBODY", 0),
        ]
        # and in the site's access audit (api keeps it): the read, the miss, the refusals
        recorded = [await next_message(stack, "api.audit") for _ in range(5)]
        assert all(isinstance(r, AuditRecorded) for r in recorded)
        seen = {(r.actor, r.action, r.outcome) for r in recorded if isinstance(r, AuditRecorded)}
        assert seen >= {
            ("rita", "anonymise.reidentify", "success"),
            ("rita", "anonymise.reidentify", "failure"),
            ("root", "GET /anonymise/reidentify/{project}/{subject}", "denied"),
            ("olga", "GET /anonymise/reidentify/{project}/{subject}", "denied"),
            ("sam", "GET /anonymise/reidentify/{project}/{subject}", "denied"),
        }

        # the project's profile: a SOP class outside its allow-list is refused with a reason
        await receive(runtime, "ct-only", {"ct-only/u2/a.dcm": source})
        rejected = await next_message(stack, "ingest.outcomes")
        assert isinstance(rejected, InstanceRejected)
        assert "allow-list" in rejected.reason


async def test_a_hub_passes_deidentified_data_and_quarantines_the_rest(
    stack: Stack, signer: TokenSigner
) -> None:
    from giftcloud_deid import Deidentifier, ProjectKeys

    runtime = runtime_with(stack, signer, GIFTCLOUD_ANONYMISE__MODE="verify")
    runtime.settings.anonymise.secret = None  # a hub holds no pseudonymisation secret
    buckets = runtime.settings.storage.buckets
    site_output = Deidentifier(ProjectKeys.derive(b"s" * 32, "proj")).deidentify(
        synthetic_instance()
    )
    identifiable = synthetic_instance(patient="Leak^Larry", patient_id="MRN-LEAK")
    async with running(runtime, [build_anonymise(runtime)]):
        # one bundle, one of each: the clean one passes, its neighbour is held back
        files = {"proj/u1/clean.dcm": site_output.data, "proj/u1/leak.dcm": identifiable}
        await receive(runtime, "proj", files)
        deidentified = await next_message(stack, "archive.instances")
        assert isinstance(deidentified, InstancesDeidentified)
        [passed] = deidentified.instances
        assert passed.subject == site_output.subject
        assert passed.sop_uid == site_output.sop_uid
        outgoing = buckets.outgoing
        assert unpack(await runtime.store.get(outgoing, deidentified.object_key)) == [
            site_output.data
        ]

        rejected = await next_message(stack, "ingest.outcomes")
        assert isinstance(rejected, InstanceRejected)
        assert (
            "not de-identified" in rejected.reason and "PatientIdentityRemoved" in rejected.reason
        )

        async def quarantined() -> bool:
            return await runtime.store.exists(buckets.quarantine, "proj/u1/leak.dcm")

        await eventually(quarantined, what="quarantined")

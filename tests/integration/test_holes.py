"""The holes found when giftcloud was tried as an attacker would, each closed at every way in:
a UID that reaches into another project's archive keys, a deflate bomb, NUL bytes and
out-of-range numbers that reached the database. On the real servers; the overwrite test
uses the folder store, where it worked."""

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from giftcloud.client import multipart_related, stow_reasons
from giftcloud_anonymise.app import build as build_anonymise
from giftcloud_api.app import build as build_api
from giftcloud_archive.app import build as build_archive
from giftcloud_auth.app import build as build_auth
from giftcloud_core.app import Runtime
from giftcloud_core.bundle import pack
from giftcloud_core.events import DeidentifiedPart, InstancesDeidentified, ProjectCreated
from giftcloud_core.storage import archive_key
from giftcloud_core.tokens import SignerJwks, TokenSigner, TokenVerifier
from giftcloud_deid import Deidentifier, ProjectKeys
from giftcloud_ingest.app import build as build_ingest
from integration.conftest import eventually, running
from support.dicom_files import deflate_bomb, synthetic_instance, with_uids
from support.incoming import receive
from support.stack import Stack

Bearer = Callable[..., dict[str, str]]
MiB = 1024 * 1024


def hub(stack: Stack, signer: TokenSigner, objects: Path) -> Runtime:
    """A hub: verify mode (no secrets), objects in a folder."""
    stack.extra.update(
        GIFTCLOUD_ANONYMISE__MODE="verify",
        GIFTCLOUD_STORAGE__KIND="fs",
        GIFTCLOUD_STORAGE__PATH=str(objects),
    )
    runtime = Runtime(
        stack.settings(),
        verifier=TokenVerifier(SignerJwks(lambda: signer), "giftcloud", "giftcloud"),
    )
    runtime.settings.anonymise.secret = None
    return runtime


async def stow(
    client: httpx.AsyncClient, project: str, files: list[bytes], headers: dict[str, str]
) -> httpx.Response:
    body, content_type = multipart_related(files)
    return await client.post(
        f"/dicomweb/{project}/studies",
        content=body,
        headers={**headers, "Content-Type": content_type},
    )


async def test_a_member_of_one_project_cannot_overwrite_another_projects_archive(
    stack: Stack, signer: TokenSigner, bearer: Bearer, tmp_path: Path
) -> None:
    runtime = hub(stack, signer, tmp_path / "objects")
    buckets = runtime.settings.storage.buckets
    parts = [build_ingest(runtime), build_anonymise(runtime), build_archive(runtime)]
    parts.append(build_api(runtime))
    bob = bearer("bob", projects={"proj-b": "member"})
    alice = bearer("alice", projects={"proj-a": "member"})
    # what a site sent to project B, de-identified
    original = Deidentifier(ProjectKeys.derive(b"s" * 32, "proj-b")).deidentify(
        synthetic_instance()
    )
    b_key = archive_key("proj-b", original.study_uid, original.series_uid, original.sop_uid)
    async with running(runtime, parts) as client:
        for project in ("proj-a", "proj-b"):
            await runtime.bus.publish(ProjectCreated(project=project, correlation_id="t"))

        async def known() -> bool:
            response = await client.get("/ingest/proj-b/uploads", headers=bob)
            return response.status_code == 200

        await eventually(known, what="ingest learns the projects")
        assert (await stow(client, "proj-b", [original.data], bob)).status_code == 200

        async def archived() -> bool:
            return await runtime.store.exists(buckets.archive, b_key)

        await eventually(archived, what="B's instance archived")
        b_pixels = await runtime.store.get(buckets.archive, b_key)

        # alice's file: de-identified, B's series and SOP UIDs, a study UID that climbs out
        escape = f"2.25.1/../../proj-b/{original.study_uid}"
        evil = with_uids(original.data, StudyInstanceUID=escape)

        # 1. STOW-RS refuses it, saying which UID and why
        response = await stow(client, "proj-a", [evil], alice)
        assert response.status_code == 400, response.text
        [reason] = stow_reasons(response.json())
        assert "StudyInstanceUID" in reason and "not a valid UID" in reason

        # 2. should it reach anonymise another way, verify mode refuses it (quarantine)
        await receive(runtime, "proj-a", {"proj-a/u9/000000.dcm": evil})

        async def quarantined() -> bool:
            return await runtime.store.exists(buckets.quarantine, "proj-a/u9/000000.dcm")

        await eventually(quarantined, what="the escaping file quarantined")

        # 3. should an event name such UIDs, archive dead-letters it and writes nothing
        await runtime.store.put(buckets.outgoing, "proj-a/u8/0000.bundle", pack([evil]))
        await runtime.bus.publish(
            InstancesDeidentified(
                project="proj-a",
                correlation_id="u8",
                object_key="proj-a/u8/0000.bundle",
                instances=(
                    DeidentifiedPart(
                        received_key="proj-a/u8/000000.dcm",
                        sha256=hashlib.sha256(evil).hexdigest(),
                        size=len(evil),
                        subject=original.subject,
                        study_uid=escape,
                        series_uid=original.series_uid,
                        sop_uid=original.sop_uid,
                        sop_class_uid=original.sop_class_uid,
                    ),
                ),
            )
        )

        async def dead_lettered() -> bool:
            return await runtime.bus.dead_letters("archive.instances") == 1

        await eventually(dead_lettered, what="the escaping event dead-lettered")

        # B's pixels are B's, and nothing of A's landed anywhere under B
        assert await runtime.store.get(buckets.archive, b_key) == b_pixels
        assert await runtime.store.list(buckets.archive, "proj-b/") == [b_key]
        assert await runtime.store.list(buckets.archive, "proj-a/") == []


async def test_a_deflate_bomb_is_refused_with_a_reason_at_ingest_and_at_anonymise(
    runtime: Runtime, stack: Stack, bearer: Bearer
) -> None:
    runtime.settings.limits.max_instance_bytes = 16 * MiB  # ceiling: 32 MiB inflated
    buckets = runtime.settings.storage.buckets
    bomb = deflate_bomb(256 * MiB)
    owner = bearer(projects={"proj": "owner"})
    async with running(runtime, [build_ingest(runtime), build_anonymise(runtime)]) as client:
        await runtime.bus.publish(ProjectCreated(project="proj", correlation_id="t"))

        async def known() -> bool:
            return (await client.get("/ingest/proj/uploads", headers=owner)).status_code == 200

        await eventually(known, what="ingest learns the project")
        response = await stow(client, "proj", [bomb], owner)
        assert response.status_code == 400
        [failure] = response.json()["00081198"]["Value"]
        assert failure["00081197"]["Value"] == [0xC001]  # for good: not "out of resources"
        assert "inflates to more than 33554432 bytes" in stow_reasons(response.json())[0]
        assert await runtime.store.list(buckets.incoming) == []

        # handed to anonymise some other way: quarantined with the reason, never inflated whole
        await receive(runtime, "proj", {"proj/u1/000000.dcm": bomb})

        async def quarantined() -> bool:
            return await runtime.store.exists(buckets.quarantine, "proj/u1/000000.dcm")

        await eventually(quarantined, what="the bomb quarantined")


async def test_nul_bytes_and_huge_numbers_are_bad_requests_and_never_logged(
    stack: Stack, signer: TokenSigner, bearer: Bearer, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = Runtime(
        stack.settings(),
        verifier=TokenVerifier(SignerJwks(lambda: signer), "giftcloud", "giftcloud"),
    )
    auth, _ = build_auth(runtime)
    owner = bearer(projects={"proj": "owner"})
    caplog.set_level(logging.DEBUG)
    async with running(runtime, [auth, build_api(runtime)]) as client:
        await runtime.bus.publish(ProjectCreated(project="proj", correlation_id="t"))

        async def known() -> bool:
            response = await client.get("/dicomweb/proj/studies", headers=owner)
            return response.status_code in (200, 204)

        await eventually(known, what="api learns the project")
        marker = "MRN-SECRET-4711"
        login = await client.post(
            "/auth/token", data={"username": f"admin\x00{marker}", "password": "x"}
        )
        assert login.status_code == 400 and "NUL" in login.json()["detail"]
        for params in (
            {"PatientID": f"{marker}\x00"},
            {"StudyInstanceUID": "1.2\x00"},
            {"offset": str(2**63)},
            {"offset": str(2**70)},
            {"limit": "-1"},
        ):
            response = await client.get("/dicomweb/proj/studies", params=params, headers=owner)
            assert response.status_code == 400, (params, response.text)
            assert response.json()["detail"]
        path = await client.get(f"/dicomweb/proj%00{marker}/studies", headers=owner)
        assert path.status_code == 400
    served = "\n".join(  # what the services logged (not this test's own HTTP client)
        r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "aiormq"))
    )
    assert marker not in served
    assert "parameters" not in served.lower()

"""A re-sent instance (the same SOP Instance UID, another transfer syntax) keeps the copy
archived first: the archive's object and the catalogue's row never disagree, so a zip
delivers the bytes its Content-Length promises, /metadata names the stored syntax and
WADO-RS answers 406 for a syntax the archive does not hold. ``giftcloud repair`` fixes an
archive where a re-send left them disagreeing before. On the real servers."""

import argparse
import asyncio
import io
import random
import zipfile
from collections.abc import Callable
from typing import Any

import httpx
import pydicom
import pytest
from giftcloud.client import multipart_related
from giftcloud.repair import repair
from giftcloud_anonymise.app import build as build_anonymise
from giftcloud_api.app import build as build_api
from giftcloud_api.catalogue.downloads import ObjectChanged
from giftcloud_archive.app import build as build_archive
from giftcloud_core.app import Runtime
from giftcloud_core.events import ProjectCreated
from giftcloud_ingest.app import build as build_ingest
from integration.conftest import eventually, running
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from support.dicom_files import read, synthetic_instance, to_bytes
from support.stack import Stack

Bearer = Callable[..., dict[str, str]]
SYNTAXES = (ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian)


def in_syntax(data: bytes, syntax: str) -> bytes:
    ds = read(data)
    ds.file_meta.TransferSyntaxUID = syntax
    return to_bytes(ds)


def copies(patient: str, number: int = 1) -> dict[str, bytes]:
    """One instance, written in each syntax (the same UIDs, different bytes)."""
    ds = read(synthetic_instance(patient_id=patient))
    ds.InstanceNumber = number
    original = to_bytes(ds)
    return {syntax: in_syntax(original, syntax) for syntax in SYNTAXES}


class Project:
    def __init__(self, client: httpx.AsyncClient, name: str, headers: dict[str, str]) -> None:
        self.client, self.name, self.headers = client, name, headers

    async def send(self, files: list[bytes]) -> None:
        body, content_type = multipart_related(files)
        response = await self.client.post(
            f"/dicomweb/{self.name}/studies",
            content=body,
            headers={**self.headers, "Content-Type": content_type},
        )
        assert response.status_code == 200, response.text
        upload = response.headers["X-Giftcloud-Upload"]

        async def settled() -> bool:
            answer = await self.client.get(
                f"/ingest/{self.name}/uploads/{upload}", headers=self.headers
            )
            status: dict[str, Any] = answer.json()
            return status["pending"] == 0 and status["archived"] == len(files)

        await eventually(settled, what="the upload archived")

    async def instances(self) -> list[tuple[str, str, str, int]]:
        found = await self.client.get(
            f"/dicomweb/{self.name}/instances?includefield=00200013", headers=self.headers
        )
        return [
            (
                i["0020000D"]["Value"][0],
                i["0020000E"]["Value"][0],
                i["00080018"]["Value"][0],
                int(i["00200013"]["Value"][0]),
            )
            for i in found.json()
        ]

    async def check(self, runtime: Runtime, study: str, series: str, sop: str) -> str:
        """Everything a client can read of one instance agrees; its stored syntax."""
        base = f"/dicomweb/{self.name}/studies/{study}/series/{series}/instances/{sop}"
        stored = await self.client.get(
            base, headers={**self.headers, "Accept": "application/dicom; transfer-syntax=*"}
        )
        assert stored.status_code == 200
        key = f"{self.name}/{study}/{series}/{sop}.dcm"
        archive = runtime.settings.storage.buckets.archive
        assert stored.content == await runtime.store.get(archive, key)
        syntax = str(read(stored.content).file_meta.TransferSyntaxUID)
        metadata = await self.client.get(f"{base}/metadata", headers=self.headers)
        assert metadata.json()[0]["00020010"]["Value"] == [syntax]
        for other in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
            asked = await self.client.get(
                base,
                headers={**self.headers, "Accept": f"application/dicom; transfer-syntax={other}"},
            )
            # the kept copy, as stored or transcoded: never the other copy's content
            assert asked.status_code == 200, (other, syntax)
            given = read(asked.content)
            assert given.file_meta.TransferSyntaxUID == other
            assert given.PixelData == read(stored.content).PixelData
            if other == syntax:
                assert asked.content == stored.content
        return syntax

    async def check_zip(self) -> None:
        response = await self.client.get(
            f"/api/projects/{self.name}/download", headers=self.headers
        )
        assert response.status_code == 200
        assert int(response.headers["Content-Length"]) == len(response.content)
        with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
            for name in archive.namelist():
                pydicom.dcmread(io.BytesIO(archive.read(name)))


def parts(runtime: Runtime) -> list[Any]:
    return [
        build_ingest(runtime),
        build_anonymise(runtime),
        build_archive(runtime),
        build_api(runtime),
    ]


async def started(
    client: httpx.AsyncClient, runtime: Runtime, name: str, headers: dict[str, str]
) -> Project:
    await runtime.bus.publish(ProjectCreated(project=name, correlation_id="t"))

    async def known() -> bool:
        response = await client.get(f"/ingest/{name}/uploads", headers=headers)
        return response.status_code == 200

    await eventually(known, what="ingest learns the project")
    return Project(client, name, headers)


async def test_a_resend_in_another_syntax_keeps_the_first_copy_everywhere(
    runtime: Runtime, bearer: Bearer
) -> None:
    headers = bearer("alice", projects={"resend": "member"})
    first = copies("RESEND-1")
    both = copies("RESEND-2")
    async with running(runtime, parts(runtime)) as client:
        project = await started(client, runtime, "resend", headers)
        # a modality sends it uncompressed; the PACS re-sends it in another syntax
        await project.send([first[ExplicitVRLittleEndian]])
        await project.send([first[ImplicitVRLittleEndian]])
        await project.send([first[DeflatedExplicitVRLittleEndian]])
        # both copies in one request (one bundle)
        await project.send([both[ImplicitVRLittleEndian], both[ExplicitVRLittleEndian]])
        found = await project.instances()
        assert len(found) == 2
        syntaxes = {await project.check(runtime, *uids[:3]) for uids in found}
        assert syntaxes == {ExplicitVRLittleEndian, ImplicitVRLittleEndian}  # each one's first
        await project.check_zip()


async def test_random_send_sequences_never_leave_archive_and_catalogue_apart(
    runtime: Runtime, bearer: Bearer
) -> None:
    """Random sends of three instances in random syntaxes, in one to three requests: each
    instance is archived as it was first sent, and everything a client reads agrees."""
    projects = [f"sequence-{seed}" for seed in range(5)]
    headers = bearer("alice", projects=dict.fromkeys(projects, "member"))
    async with running(runtime, parts(runtime)) as client:
        for seed, name in enumerate(projects):
            rng = random.Random(seed)
            project = await started(client, runtime, name, headers)
            instances = [copies(f"SEQ-{seed}-{i}", number=i + 1) for i in range(3)]
            sends = [(rng.randrange(3), rng.choice(SYNTAXES)) for _ in range(rng.randint(2, 7))]
            cuts = sorted(rng.sample(range(1, len(sends)), k=min(2, len(sends) - 1)))
            first: dict[int, str] = {}
            for start, stop in zip([0, *cuts], [*cuts, len(sends)], strict=True):
                batch = sends[start:stop]
                for i, syntax in batch:  # the engine writes a deflated file out inflated
                    inflated = syntax == DeflatedExplicitVRLittleEndian
                    first.setdefault(i + 1, ExplicitVRLittleEndian if inflated else syntax)
                await project.send([instances[i][syntax] for i, syntax in batch])
            stored = {}
            for study, series, sop, number in await project.instances():
                stored[number] = await project.check(runtime, study, series, sop)
            assert stored == first, (seed, sends)
            await project.check_zip()


async def test_repair_finds_and_fixes_rows_that_describe_another_copy(
    stack: Stack, runtime: Runtime, bearer: Bearer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An archive as a re-send left it before: the object overwritten by a copy in another
    syntax, the row still describing the first. The zip stops short rather than cut
    silently; ``giftcloud repair --check`` reports it, ``giftcloud repair`` fixes it."""
    headers = bearer("alice", projects={"repair": "member"})
    one = copies("REPAIR-1")
    async with running(runtime, parts(runtime)) as client:
        project = await started(client, runtime, "repair", headers)
        await project.send([one[ExplicitVRLittleEndian]])
        [(study, series, sop, _)] = await project.instances()
        key = f"repair/{study}/{series}/{sop}.dcm"
        archive = runtime.settings.storage.buckets.archive
        kept = read(await runtime.store.get(archive, key))
        kept.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        await runtime.store.put(archive, key, to_bytes(kept), "application/dicom")

        with pytest.raises(ObjectChanged):
            await client.get("/api/projects/repair/download", headers=headers)

        for name, value in stack.env().items():
            monkeypatch.setenv(name, value)

        def command(project: str | None, check: bool) -> int:  # its own event loop
            return repair(argparse.Namespace(project=project, check=check))

        assert await asyncio.to_thread(command, "repair", True) == 1
        assert await asyncio.to_thread(command, "repair", False) == 0
        assert await asyncio.to_thread(command, None, True) == 0
        assert await project.check(runtime, study, series, sop) == ImplicitVRLittleEndian
        await project.check_zip()

"""Zip downloads: a project, a subject, a study or a series as one streamed zip, its length
known in advance, every entry the archived file, stored; WADO-RS ``Accept: application/zip``."""

import io
import zipfile
from collections.abc import Callable

import httpx
from giftcloud_api.app import build as build_api
from giftcloud_core.app import Runtime
from giftcloud_core.events import InstancesArchived, ProjectCreated
from integration.conftest import eventually, running
from support.catalogue import FILES, catalogue

Bearer = Callable[..., dict[str, str]]


def _unzipped(response: httpx.Response) -> dict[str, bytes]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert int(response.headers["content-length"]) == len(response.content)
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.testzip() is None  # every CRC right
        assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_STORED}
        return {name: archive.read(name) for name in archive.namelist()}


async def test_zip_downloads(runtime: Runtime, bearer: Bearer) -> None:
    archive = runtime.settings.storage.buckets.archive
    instances = catalogue()
    owner = bearer("olga", projects={"proj": "owner"})
    async with running(runtime, [build_api(runtime)]) as client:
        for instance in instances:
            await runtime.store.put(archive, instance.object_key, FILES[instance.sop_uid])
        await runtime.bus.publish(ProjectCreated(project="proj", title="P", correlation_id="c"))
        await runtime.bus.publish(
            InstancesArchived(project="proj", correlation_id="u", instances=tuple(instances))
        )

        async def catalogued() -> bool:
            answer = await client.get("/api/projects/proj/subjects", headers=owner)
            return answer.status_code == 200 and len(answer.json()) == 2

        await eventually(catalogued, what="the catalogue filled")

        everything = _unzipped(await client.get("/api/projects/proj/download", headers=owner))
        assert everything == {
            f"{i.subject}/{i.study_uid}/{i.series_uid}/{i.sop_uid}.dcm": FILES[i.sop_uid]
            for i in instances
        }
        beta = _unzipped(
            await client.get("/api/projects/proj/download?subject=SUBJ-BETA", headers=owner)
        )
        assert len(beta) == 4 and all(n.startswith("SUBJ-BETA/2.25.300/") for n in beta)
        study = _unzipped(
            await client.get("/api/projects/proj/download?study=2.25.200", headers=owner)
        )
        assert len(study) == 5
        series = await client.get(
            "/api/projects/proj/download?study=2.25.200&series=2.25.220", headers=owner
        )
        assert len(_unzipped(series)) == 2
        assert 'filename="proj-2.25.200-2.25.220.zip"' in series.headers["content-disposition"]

        # the size before the data: HEAD
        head = await client.head("/api/projects/proj/download?study=2.25.200", headers=owner)
        assert head.status_code == 200 and head.content == b""
        full = await client.get("/api/projects/proj/download?study=2.25.200", headers=owner)
        assert head.headers["content-length"] == full.headers["content-length"]

        # WADO-RS: a study and a series as a zip when asked for one
        wado = await client.get(
            "/dicomweb/proj/studies/2.25.300", headers={**owner, "Accept": "application/zip"}
        )
        assert _unzipped(wado) == beta
        wado_series = await client.get(
            "/dicomweb/proj/studies/2.25.200/series/2.25.210",
            headers={**owner, "Accept": "application/zip"},
        )
        assert len(_unzipped(wado_series)) == 2

        # nothing matches: 404 with the reason; no role: 403; unknown project: 404
        none = await client.get("/api/projects/proj/download?subject=NOBODY", headers=owner)
        assert none.status_code == 404 and "nothing" in none.json()["detail"]
        other = bearer("eve", projects={"else": "owner"})
        assert (await client.get("/api/projects/proj/download", headers=other)).status_code == 403
        assert (await client.get("/api/projects/nope/download", headers=owner)).status_code == 404
        assert (await client.get("/api/projects/proj/download")).status_code == 401

        # every download is in the project's access log, with what went out
        trail = await client.get(
            "/api/projects/proj/audit", params={"action": "api.download"}, headers=owner
        )
        details = [r["detail"] for r in trail.json() if r["action"] == "api.download"]
        assert any(d.startswith("12 instance(s), ") for d in details), details

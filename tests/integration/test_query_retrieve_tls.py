"""api's DICOM query/retrieve over TLS (GIFTCLOUD_API__DIMSE_TLS_CERT/KEY), as dcmtk's
findscu speaks it (+tla: TLS without a client certificate, the server's checked against
the CA): answered over TLS, and a plain connection gets nothing."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pydicom
import pytest
from giftcloud.client import multipart_related
from integration.test_access_control import make_project
from support.dicom_files import synthetic_instance
from support.flower import tls
from support.infra import dcmtk, free_port
from support.site import site, wait_until
from support.stack import Stack

FINDSCU = dcmtk("findscu")
pytestmark = pytest.mark.skipif(FINDSCU is None, reason="dcmtk's findscu is not installed")


async def findscu(port: int, out: Path, *tls_args: str) -> subprocess.CompletedProcess[str]:
    assert FINDSCU is not None
    command = [
        FINDSCU, "-v", *tls_args, "-aet", "TLS_WS", "-aec", "GIFTCLOUD", "-S", "-X", "-od", str(out),
        "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID", "127.0.0.1", str(port),
    ]  # fmt: skip
    # the SCP answers on this test's event loop: the tool runs beside it, not on it
    return await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=60
    )


async def test_query_retrieve_over_tls(stack: Stack, tmp_path: Path) -> None:
    ca, cert, key = tls(tmp_path)
    port = free_port()
    settings = stack.settings(
        api={"dimse_port": port, "dimse_tls_cert": cert, "dimse_tls_key": key}
    )
    async with site(settings) as s, s.client() as client:
        admin = await s.token()
        await make_project(s, admin, "secure")
        body, content_type = multipart_related([synthetic_instance(patient="Tls^Tess")])
        stored = await client.post(
            "/dicomweb/secure/studies", content=body,
            headers={**admin, "Content-Type": content_type},
        )  # fmt: skip
        assert stored.status_code == 200, stored.text

        async def archived() -> bool:
            answer = await client.get("/dicomweb/secure/studies", headers=admin)
            return answer.status_code == 200 and len(answer.json()) == 1

        await wait_until(archived, "the instance archived")
        made = await client.post(
            "/auth/projects/secure/keys", json={"name": "ws", "role": "collaborator"},
            headers=admin,
        )  # fmt: skip
        registered = await client.put(
            "/api/dimse/callers/TLS_WS",
            json={"host": "127.0.0.1", "api_key": made.json()["key"]},
            headers=admin,
        )
        assert registered.status_code == 200, registered.text

        over_tls = tmp_path / "tls"
        over_tls.mkdir()
        answered = await findscu(port, over_tls, "+tla", "+cf", str(ca))
        assert answered.returncode == 0, answered.stderr
        studies = [pydicom.dcmread(f) for f in over_tls.glob("rsp*.dcm")]
        assert len(studies) == 1 and studies[0].StudyInstanceUID, answered

        plain = tmp_path / "plain"
        plain.mkdir()
        refused = await findscu(port, plain, "-to", "5", "-ta", "5")
        assert refused.returncode != 0 and not list(plain.iterdir()), refused

"""The same patient through the site's service and through ``giftcloud anonymise`` with the
site's secret and namespace: one subject, one label, whatever issuer each file names."""

import asyncio
import json
import os
import subprocess
from pathlib import Path

from giftcloud.client import multipart_related
from support.dicom_files import patient_file
from support.infra import VENV_BIN
from support.site import site, wait_until
from support.stack import Stack

NAMESPACE = """\
site: st-elsewhere
issuers:
  st-elsewhere: [HOSP-A, HOSPA, "2.16.840.1.113883.3.1234"]
unknown_issuer: refuse
"""


async def test_stow_and_the_command_agree_on_the_subject(stack: Stack, tmp_path: Path) -> None:
    namespace = tmp_path / "namespace.yaml"
    namespace.write_text(NAMESPACE)
    settings = stack.settings(
        anonymise={
            "secret": stack.secrets["GIFTCLOUD_ANONYMISE__SECRET"],
            "namespace_file": namespace,
        }
    )
    async with site(settings) as s, s.client() as client:
        admin = await s.token()
        await client.post("/auth/projects", json={"name": "cohort"}, headers=admin)

        async def known() -> bool:
            return (await client.get("/ingest/cohort/uploads", headers=admin)).status_code == 200

        await wait_until(known, "ingest knows the project")
        files = [
            patient_file(issuer="HOSP-A"),
            patient_file(),
            patient_file(universal="2.16.840.1.113883.3.1234"),
        ]
        body, content_type = multipart_related(files)
        stored = await client.post(
            "/dicomweb/cohort/studies",
            content=body,
            headers={**admin, "Content-Type": content_type},
        )
        assert stored.status_code == 200, stored.text

        async def archived() -> bool:
            studies = await client.get("/dicomweb/cohort/studies", headers=admin)
            counts = [s["00201208"]["Value"][0] for s in studies.json()] if studies.content else []
            return sum(counts) == 3

        await wait_until(archived, "all three archived")
        studies = (await client.get("/dicomweb/cohort/studies", headers=admin)).json()
        [subject] = {study["00100020"]["Value"][0] for study in studies}  # one patient

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "laptop.dcm").write_bytes(patient_file(issuer="hospa"))
    environment = {
        **os.environ,
        "GIFTCLOUD_ANONYMISE__SECRET": stack.secrets["GIFTCLOUD_ANONYMISE__SECRET"],
        "GIFTCLOUD_ANONYMISE__NAMESPACE_FILE": str(namespace),
    }
    done = await asyncio.to_thread(
        subprocess.run,
        [
            str(VENV_BIN / "giftcloud"),
            "anonymise",
            str(tmp_path / "in"),
            str(tmp_path / "out"),
            "--project",
            "cohort",
            "--keys",
            str(tmp_path / "keys"),
        ],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == [subject]
    report = json.loads((tmp_path / "out.report.json").read_text())
    assert report["patient_namespace"]["site"] == "st-elsewhere"

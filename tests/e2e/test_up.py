"""`giftcloud up`: every service in one process on embedded parts, as a newcomer runs it."""

import os
import signal
import subprocess
from pathlib import Path

import httpx
import pydicom
from dicomweb_client.api import DICOMwebClient
from giftcloud.client import Client
from giftcloud_api.ohif.install import VERSION as OHIF
from support.dicom_files import pydicom_file
from support.infra import VENV_BIN, free_port, stop_process, wait_for


def test_up_carries_a_file_end_to_end(tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "up.log").open("wb")
    process = subprocess.Popen(
        [
            str(VENV_BIN / "giftcloud"),
            "up",
            "--data-dir",
            str(tmp_path / "data"),
            "--port",
            str(port),
        ],
        env={
            **{k: v for k, v in os.environ.items() if k != "GIFTCLOUD_API__OHIF_DIR"},
            "GIFTCLOUD_ADMIN_PASSWORD": "up-admin-password",
            # a machine that never ran it: OHIF comes from the npm registry at the first start
            "XDG_CACHE_HOME": str(tmp_path / "cache"),
        },
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: httpx.get(f"{url}/readyz", timeout=2).status_code == 200,
            timeout=120,
            what="giftcloud up to be ready",
        )
        page = httpx.get(f"{url}/start")  # getting started, with what runs
        assert "giftcloud" in page.text
        assert "anonymise: running" in page.text
        assert "Sign in to giftcloud" in httpx.get(url, follow_redirects=True).text
        client = Client(url, username="admin", password="up-admin-password")
        client.create_project("demo")
        source = pydicom_file("CT_small.dcm")
        result = client.store("demo", [source.read_bytes()])
        assert result.stored == 1, result
        web = DICOMwebClient(url=f"{url}/dicomweb/demo", headers=dict(client.http.headers))
        found = wait_for(web.search_for_instances, timeout=60, what="the instance in QIDO-RS")
        instance = web.retrieve_instance(
            found[0]["0020000D"]["Value"][0],
            found[0]["0020000E"]["Value"][0],
            found[0]["00080018"]["Value"][0],
        )
        original = pydicom.dcmread(source)
        assert instance.PatientIdentityRemoved == "YES"
        assert instance.PatientName != original.PatientName
        assert instance.SOPInstanceUID != original.SOPInstanceUID
        # objects at rest: the identifiable original never stays, the archive holds the result
        objects = tmp_path / "data" / "objects"
        assert not any((objects / "giftcloud-incoming").rglob("*.dcm"))
        assert len(list((objects / "giftcloud-archive").rglob("*.dcm"))) == 1
        # OHIF, installed into the user's cache, opens the project's studies
        token = str(client.http.headers["Authorization"]).split()[1]
        config = httpx.get(f"{url}/ohif/app-config.js", cookies={"giftcloud_access": token})
        assert '"sourceName": "demo"' in config.text, config.text[:300]
        assert (tmp_path / "cache" / "giftcloud" / f"ohif-{OHIF}" / "index.html").exists()
    finally:
        stop_process(process, signal.SIGTERM, timeout=60)
    said = (tmp_path / "up.log").read_text()
    # uvicorn shuts down gracefully, then re-raises SIGTERM
    assert process.returncode in (0, -signal.SIGTERM), said[-3000:]
    assert "Application shutdown complete" in said
    assert f"giftcloud: installing OHIF {OHIF} from the npm registry" in said

"""`giftcloud up` keeps the pipeline's promises: stopped (Ctrl-C) or killed (-9) while 300
instances are in flight, then started again, every instance STOW-RS acknowledged is
archived and catalogued exactly once, every upload ends with nothing pending, and the log
holds no traceback."""

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from giftcloud.client import multipart_related
from giftcloud.embedded import postgres_running
from support.dicom_files import distinct_instances
from support.infra import stop_process, wait_for
from support.up import Up

PASSWORD = "up durable password"
COUNT = 300
BATCH = 10


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    running = Up(tmp_path / "data", tmp_path / "up.log", PASSWORD)
    try:
        yield running
    finally:
        running.stop()


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT], ids=["kill -9", "Ctrl-C"])
def test_up_stopped_midway_loses_nothing(up: Up, how: signal.Signals) -> None:
    up.start()
    admin = up.token()
    created = httpx.post(f"{up.url}/auth/projects", json={"name": "durable"}, headers=admin)
    assert created.status_code == 201
    wait_for(
        lambda: httpx.get(f"{up.url}/ingest/durable/uploads", headers=admin).status_code == 200,
        what="the project known to ingest",
    )
    files = distinct_instances(COUNT, f"9{how.value}")
    acknowledged: list[str] = []  # upload ids whose STOW-RS answer came back

    batches = list(range(0, COUNT, BATCH))
    taking = threading.Lock()

    def send() -> None:  # four at once: ingest outruns the pipeline, so much is in flight
        while True:
            with taking:
                if not batches:
                    return
                start = batches.pop(0)
            body, content_type = multipart_related(files[start : start + BATCH])
            try:
                response = httpx.post(
                    f"{up.url}/dicomweb/durable/studies",
                    content=body,
                    headers={**admin, "Content-Type": content_type},
                    timeout=60,
                )
            except httpx.HTTPError:
                return  # the server went away mid-request: this batch was never acknowledged
            if response.status_code != 200:
                return
            acknowledged.append(response.headers["X-Giftcloud-Upload"])

    senders = [threading.Thread(target=send) for _ in range(4)]
    for sender in senders:
        sender.start()
    deadline = time.monotonic() + 120
    while up.instances("durable", admin) < 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    at_stop = up.instances("durable", admin)
    assert up.process is not None
    up.process.send_signal(how)
    up.process.wait(90)
    for sender in senders:
        sender.join()
    assert 0 < at_stop < COUNT, f"{at_stop} archived at the stop: nothing was in flight"
    assert len(acknowledged) * BATCH > at_stop, "the stop came after the last acknowledgement"

    up.start()  # the same data folder
    admin = up.token()

    def settled() -> list[dict[str, object]] | None:
        statuses = [
            httpx.get(f"{up.url}/ingest/durable/uploads/{u}", headers=admin).json()
            for u in acknowledged
        ]
        return statuses if all(s["pending"] == 0 for s in statuses) else None

    statuses = wait_for(settled, timeout=240, what="every acknowledged upload settled")
    assert all(s["archived"] == BATCH and s["rejected"] == [] for s in statuses), statuses
    # the catalogue is its own consumer of the archive's events: it catches up with the
    # archive (every instance there, once), however long its redeliveries take
    archive = up.data / "objects" / "giftcloud-archive" / "durable"

    def drained() -> bool:  # uploads not acknowledged may still be on their way
        return not any(
            list((up.data / "objects" / bucket).rglob("*.bundle"))
            for bucket in ("giftcloud-incoming", "giftcloud-outgoing")
        )

    wait_for(drained, timeout=120, what="no bundle left in incoming or outgoing")

    def catalogued() -> int | None:
        stored = up.instances("durable", admin)
        return stored if stored == len(list(archive.rglob("*.dcm"))) else None

    stored = wait_for(catalogued, timeout=120, what="the catalogue holding the archive")
    # acknowledged ones all there, and nothing twice: at most what was ever sent
    assert len(acknowledged) * BATCH <= stored <= COUNT
    stop_process(up.process, signal.SIGINT, timeout=90)  # Ctrl-C, after a kill -9 too
    assert not postgres_running(up.data), "PostgreSQL was left running after Ctrl-C"
    said = up.log.read_text()
    assert "Traceback" not in said, said[-4000:]
    print(f"stopped with {at_stop} of {COUNT} archived; {len(acknowledged)} uploads acknowledged")

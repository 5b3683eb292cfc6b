"""The DICOM node against hostile and changing peers, on the five services as processes: a
PDU announcing 4 GiB, a PDU trickled a byte at a time, connections that never ask for an
association, a route removed while an association stores, an instance over the size limit,
and an outsider probing for calling AE titles. Small limits, so each shows in seconds."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, Verification  # type: ignore[attr-defined]
from support.deployment import Deployment, deployed
from support.dicom_files import read, synthetic_instance
from support.infra import Seaweed, free_port

PROJECT, AE_TITLE = "guarded", "GUARDED"
MiB = 1024 * 1024
IDLE = 3  # seconds: the node's idle timeout, and a PDU's deadline
MAX_ASSOCIATIONS, PER_ADDRESS = 2, 5


@pytest.fixture(scope="module")
def node(
    real_services: None, seaweed: Seaweed, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Deployment, int]]:
    port = free_port()
    with deployed(
        seaweed,
        tmp_path_factory.mktemp("dicom-guards"),
        GIFTCLOUD_INGEST__DICOM_PORT=str(port),
        GIFTCLOUD_INGEST__DICOM_HOST="127.0.0.1",
        GIFTCLOUD_INGEST__DICOM_IDLE_SECONDS=str(IDLE),
        GIFTCLOUD_INGEST__DICOM_MAX_ASSOCIATIONS=str(MAX_ASSOCIATIONS),
        GIFTCLOUD_INGEST__DICOM_MAX_CONNECTIONS_PER_ADDRESS=str(PER_ADDRESS),
        GIFTCLOUD_LIMITS__MAX_INSTANCE_BYTES=str(4 * MiB),
    ) as deployment:
        deployment.create_project(PROJECT)
        route(deployment, [], [])
        yield deployment, port


def route(deployment: Deployment, calling: list[str], networks: list[str]) -> None:
    response = httpx.put(
        f"{deployment.url}/ingest/{PROJECT}/dicom",
        json={"ae_title": AE_TITLE, "calling_ae_titles": calling, "networks": networks},
        headers=deployment.token(),
    )
    assert response.status_code == 200, response.text


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def closed_within(sock: socket.socket, seconds: float) -> float | None:
    """How long until the node closed the connection (an A-ABORT may come first); None if
    it is still open after ``seconds``."""
    start = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - start < seconds:
        try:
            if sock.recv(65536) == b"":
                return time.monotonic() - start
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - start
    return None


def scu(calling: str = "GUARDTEST") -> AE:
    ae = AE(ae_title=calling)
    ae.add_requested_context(Verification)
    ae.add_requested_context(CTImageStorage)
    ae.acse_timeout = ae.network_timeout = 10
    return ae


def ct_instance(rows: int = 16) -> Dataset:
    ds = read(synthetic_instance(rows=rows))
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    return ds


def test_a_pdu_announcing_4_gib_is_refused_before_its_body_is_read(
    node: tuple[Deployment, int],
) -> None:
    deployment, port = node
    before = deployment.memory("ingest")["VmRSS"]
    deployment.reset_peak_memory("ingest")
    chunk = bytes(MiB)
    for _ in range(3):  # three unauthenticated connections, 100 MiB each offered
        sock = connect(port)
        sock.sendall(struct.pack(">BBL", 0x01, 0, 0xFFFFFFFF))  # A-ASSOCIATE-RQ of 4 GiB
        sent = 0
        try:
            for _ in range(100):
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:  # the node closed it: the sending fails
            pass
        assert sent < 100 * MiB
        sock.close()
    grown = deployment.memory("ingest")["VmHWM"] - before
    assert grown < 32 * MiB, f"ingest grew by {grown / MiB:.0f} MiB"
    assert "announces 4294967295 bytes" in Path(deployment.services["ingest"].log_path).read_text()


def test_a_pdu_trickled_a_byte_at_a_time_is_cut_off_at_its_deadline(
    node: tuple[Deployment, int],
) -> None:
    deployment, port = node
    sock = connect(port)
    sock.sendall(struct.pack(">BBL", 0x01, 0, 1000))
    start = time.monotonic()
    sock.settimeout(0.2)
    closed = False
    while time.monotonic() - start < 5 * IDLE:  # a byte well within the idle timeout
        try:
            sock.sendall(b"\x00")
            if sock.recv(65536) == b"":
                closed = True
                break
        except TimeoutError:
            continue
        except OSError:
            closed = True
            break
        finally:
            time.sleep(0.5)
    sock.close()
    assert closed, "a trickling PDU held its connection"
    assert time.monotonic() - start < 2 * IDLE + 1
    log = Path(deployment.services["ingest"].log_path).read_text()
    assert "a PDU did not arrive whole within" in log


def test_connections_without_an_association_take_no_slot_and_are_capped_per_address(
    node: tuple[Deployment, int],
) -> None:
    _, port = node
    idle = [connect(port) for _ in range(MAX_ASSOCIATIONS + 1)]  # more than the slots
    time.sleep(0.3)
    assoc = scu().associate("127.0.0.1", port, ae_title=AE_TITLE)
    try:
        assert assoc.is_established, "silent connections took the association slots"
        # up to the per-address limit (these, the association's, the extra), then closed
        idle += [connect(port) for _ in range(PER_ADDRESS - len(idle) - 1)]
        time.sleep(0.3)
        one_more = connect(port)
        idle.append(one_more)
        assert closed_within(one_more, 2) is not None
    finally:
        if assoc.is_established:
            assoc.release()
        for sock in idle:
            sock.close()
    time.sleep(0.5)


def test_accepted_associations_are_limited_with_the_reason(node: tuple[Deployment, int]) -> None:
    _, port = node
    held = [scu().associate("127.0.0.1", port, ae_title=AE_TITLE) for _ in range(MAX_ASSOCIATIONS)]
    try:
        assert all(a.is_established for a in held)
        refused = scu().associate("127.0.0.1", port, ae_title=AE_TITLE)
        assert refused.is_rejected
        primitive = refused.acceptor.primitive
        assert primitive is not None
        assert (primitive.result, primitive.result_source, primitive.diagnostic) == (2, 3, 2)
    finally:
        for assoc in held:
            assoc.release()
    time.sleep(0.5)


def test_an_instance_over_the_limit_is_refused_for_good(node: tuple[Deployment, int]) -> None:
    _, port = node
    assoc = scu().associate("127.0.0.1", port, ae_title=AE_TITLE)
    assert assoc.is_established
    try:
        status = assoc.send_c_store(ct_instance(rows=1600))  # 5 MB of pixels, the limit 4 MiB
        assert status.Status == 0xC001, hex(status.Status)  # Cxxx: not to be retried
        assert "the limit is" in str(status.get("ErrorComment", ""))
    finally:
        assoc.release()


def test_an_outsider_learns_nothing_of_the_calling_titles(node: tuple[Deployment, int]) -> None:
    deployment, port = node
    route(deployment, ["MODALITY1"], ["10.99.0.0/16"])
    try:
        assoc = scu("PROBING").associate("127.0.0.1", port, ae_title=AE_TITLE)
        assert assoc.is_rejected
        primitive = assoc.acceptor.primitive
        assert primitive is not None
        assert primitive.diagnostic == 0x01  # no reason: not "calling AE title not recognised"
    finally:
        route(deployment, [], [])


def test_a_route_removed_during_an_association_stores_nothing_more(
    node: tuple[Deployment, int],
) -> None:
    deployment, port = node
    assoc = scu().associate("127.0.0.1", port, ae_title=AE_TITLE)
    assert assoc.is_established
    try:
        assert assoc.send_c_store(ct_instance()).Status == 0x0000
        gone = httpx.delete(f"{deployment.url}/ingest/{PROJECT}/dicom", headers=deployment.token())
        assert gone.status_code == 204
        status = assoc.send_c_store(ct_instance())
        assert status.Status == 0x0124, hex(status.Status)
        assert "the route changed" in str(status.get("ErrorComment", ""))
    finally:
        assoc.release()
        route(deployment, [], [])

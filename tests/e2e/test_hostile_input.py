"""What an attacker sent, against the five services as processes behind nginx: deflate
bombs, floods of tiny parts, bodies that stop half way, NUL bytes. Each is refused with a
reason, the services stay responsive, and their memory stays bounded (measured from /proc)."""

import concurrent.futures
import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from giftcloud.client import stow_reasons
from support.deployment import SERVICES, Deployment, deployed
from support.dicom_files import deflate_bomb, synthetic_instance
from support.infra import Seaweed

MiB = 1024 * 1024
IDLE_SECONDS = 2
MAX_INSTANCE = 16 * MiB


@pytest.fixture(scope="module")
def hostile(
    real_services: None, seaweed: Seaweed, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    logs = tmp_path_factory.mktemp("hostile")
    env = {
        "GIFTCLOUD_INGEST__BODY_IDLE_SECONDS": str(IDLE_SECONDS),
        "GIFTCLOUD_LIMITS__MAX_INSTANCE_BYTES": str(MAX_INSTANCE),
        "GIFTCLOUD_INGEST__MAX_PARTS": "2000",
    }
    try:
        with deployed(seaweed, logs, **env) as running:
            running.create_project("hostile")
            yield running
    finally:
        for name in SERVICES:
            log = logs / f"{name}.log"
            if log.exists():
                print(f"--- {name} log (tail) ---\n" + "\n".join(log.read_text().splitlines()[-8:]))


def test_three_deflate_bombs_at_once_are_refused_and_cost_little_memory(
    hostile: Deployment,
) -> None:
    admin = hostile.token()
    bomb = deflate_bomb(1024 * MiB)  # about 1 MB that inflates to 1 GiB
    before = {name: hostile.memory(name) for name in ("ingest", "anonymise")}
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        responses = list(pool.map(lambda _: hostile.stow("hostile", [bomb], admin), range(3)))
    for response in responses:
        assert response.status_code == 400, response.text
        reason = stow_reasons(response.json())[0]
        assert f"inflates to more than {2 * MAX_INSTANCE} bytes" in reason
    for name, was in before.items():
        grew = hostile.memory(name)["VmHWM"] - was["VmRSS"]
        print(f"{name}: peak {grew / MiB:.0f} MiB above its size before the bombs")
        assert grew < 100 * MiB, f"{name} grew by {grew / MiB:.0f} MiB"


@contextlib.contextmanager
def health_probe(deployment: Deployment, service: str) -> Iterator[list[float]]:
    """Ask the service's /healthz every 50 ms while the block runs; the answers' latencies."""
    latencies: list[float] = []
    done = threading.Event()

    def probe() -> None:
        while not done.is_set():
            started = time.perf_counter()
            httpx.get(f"{deployment.services[service].url}/healthz", timeout=60)
            latencies.append(time.perf_counter() - started)
            time.sleep(0.05)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        yield latencies
    finally:
        done.set()
        prober.join()


def raw_post(port: int, path: str, headers: dict[str, str], body: Iterator[bytes]) -> bytes:
    """POST over a plain socket: one thread sends what ``body`` yields while this one reads
    the answer, so an answer that comes before the body is all sent (413, 408) is read whole."""
    answer_read = threading.Event()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()
        )
        sock.sendall((head + "\r\n").encode())

        def send() -> None:
            with contextlib.suppress(OSError):  # the server may close once it has answered
                for chunk in body:
                    if answer_read.is_set():
                        return
                    sock.sendall(chunk)

        sender = threading.Thread(target=send)
        sender.start()
        answer = b""
        try:
            while b"\r\n\r\n" not in answer:
                answer += sock.recv(65536)
            head_part, _, rest = answer.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head_part.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            while len(rest) < length:
                rest += sock.recv(65536)
        finally:
            answer_read.set()
            sender.join()
        return head_part + b"\r\n\r\n" + rest


def test_a_flood_of_tiny_parts_is_cut_off_and_health_stays_responsive(
    hostile: Deployment,
) -> None:
    """45 MB of one-byte parts took 2.4 GB and stalled /healthz for 17 s when the body was
    read whole: now the parts are counted as they stream and the flood is cut off."""
    admin = hostile.token()
    boundary = uuid.uuid4().hex
    part = f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\nx\r\n".encode()
    flood = part * (45 * MiB // len(part))

    def body() -> Iterator[bytes]:
        for start in range(0, len(flood), 64 * 1024):
            yield flood[start : start + 64 * 1024]

    before = hostile.memory("ingest")
    with health_probe(hostile, "ingest") as latencies:
        answer = raw_post(
            hostile.services["ingest"].port,
            "/dicomweb/hostile/studies",
            {
                **admin,
                "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
                "Content-Length": str(len(flood) + len(boundary) + 6),
            },
            body(),
        )
        time.sleep(0.5)  # and a few probes after
    status_line, _, rest = answer.partition(b"\r\n")
    assert b" 413 " in status_line, answer[:300]
    assert b"more than 2000 parts" in rest
    grew = hostile.memory("ingest")["VmHWM"] - before["VmRSS"]
    worst = max(latencies)
    print(f"/healthz worst {worst:.3f} s over {len(latencies)} probes; grew {grew / MiB:.0f} MiB")
    assert worst < 5  # no 17 s stall
    assert grew < 100 * MiB


def test_a_body_that_stalls_is_cut_off_and_what_came_whole_is_kept(hostile: Deployment) -> None:
    admin = hostile.token()
    boundary = uuid.uuid4().hex
    whole = [synthetic_instance(patient_id=f"MRN-STALL-{i}") for i in range(3)]
    prefix = b"".join(
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + data + b"\r\n"
        for data in whole
    )

    def body() -> Iterator[bytes]:
        yield prefix
        # then a part far past the instance ceiling that never ends: 300 MB of 800 announced
        yield f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        for _ in range(300):
            yield bytes(MiB)

    before = hostile.memory("ingest")
    started = time.monotonic()
    with health_probe(hostile, "ingest") as latencies:
        answer = raw_post(
            hostile.services["ingest"].port,
            "/dicomweb/hostile/studies",
            {
                **admin,
                "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
                "Content-Length": str(800 * MiB),
            },
            body(),
        )
    waited = time.monotonic() - started
    assert max(latencies) < 5
    status_line, _, rest = answer.partition(b"\r\n")
    assert b" 408 " in status_line, answer[:500]
    assert b"stalled" in rest and b"3 instance(s) before it were stored" in rest
    grew = hostile.memory("ingest")["VmHWM"] - before["VmRSS"]
    print(f"cut off {waited:.1f} s after the body began; ingest grew {grew / MiB:.0f} MiB")
    assert grew < 100 * MiB  # the 300 MB part was counted, not kept


def test_nul_bytes_and_metrics_through_the_gateway(hostile: Deployment) -> None:
    admin = hostile.token()
    login = httpx.post(f"{hostile.url}/auth/token", data={"username": "a\x00", "password": "x"})
    assert login.status_code == 400
    qido = httpx.get(
        f"{hostile.url}/dicomweb/hostile/studies", params={"PatientID": "x\x00"}, headers=admin
    )
    assert qido.status_code == 400
    big = httpx.get(
        f"{hostile.url}/dicomweb/hostile/studies", params={"offset": 2**63}, headers=admin
    )
    assert big.status_code == 400
    # metrics are for the cluster, not the public: the gateway never passes them on, and a
    # service asked through any proxy says no
    assert httpx.get(f"{hostile.url}/metrics").status_code == 404
    api = hostile.services["api"].url
    assert (
        httpx.get(f"{api}/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 404
    )
    assert httpx.get(f"{api}/metrics").status_code == 200


def test_a_huge_header_straight_to_a_service_is_refused_before_it_is_held(
    hostile: Deployment,
) -> None:
    """No gateway in front (a service port reached directly, as in ``giftcloud up``): four
    requests with a 150 MiB header each are answered 431 and cost no memory."""
    ingest = hostile.services["ingest"]
    before = hostile.memory("ingest")["VmRSS"]
    hostile.reset_peak_memory("ingest")
    chunk = b"a" * MiB

    def send() -> bytes:
        with socket.create_connection(("127.0.0.1", ingest.port), timeout=30) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
            with contextlib.suppress(OSError):  # closed under us: what we want
                for _ in range(150):
                    sock.sendall(chunk)
            answer = b""
            with contextlib.suppress(OSError):
                while part := sock.recv(65536):
                    answer += part
            return answer

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: send(), range(4)))
    assert all(a.startswith(b"HTTP/1.1 431") for a in answers), [a[:40] for a in answers]
    grown = hostile.memory("ingest")["VmHWM"] - before
    assert grown < 32 * MiB, f"ingest grew by {grown / MiB:.0f} MiB"
    assert httpx.get(f"{ingest.url}/healthz", timeout=5).status_code == 200


def test_x_forwarded_for_from_loopback_is_not_believed_where_no_proxy_is_trusted(
    hostile: Deployment,
) -> None:
    """GIFTCLOUD_NETWORK__TRUSTED_PROXIES unset: a client on 127.0.0.1 that says it is
    someone else is still 127.0.0.1 (outside the project's networks: 403), at the gateway
    and straight at a service."""
    admin = hostile.token()
    name = f"fenced-{uuid.uuid4().hex[:6]}"
    hostile.create_project(name)
    fence = httpx.put(
        f"{hostile.url}/auth/projects/{name}/networks",
        json={"networks": ["10.0.0.0/8"]},
        headers=admin,
    )
    assert fence.status_code == 200, fence.text
    forged = {**admin, "X-Forwarded-For": "10.1.2.3", "X-Real-IP": "10.1.2.3"}
    api = hostile.services["api"]

    def refused() -> bool:
        answers = [
            httpx.get(f"{base}/dicomweb/{name}/studies", headers=forged, timeout=10).status_code
            for base in (hostile.url, api.url)
        ]
        return answers == [403, 403]

    deadline = time.monotonic() + 30  # the api learns the networks from an event
    while not refused():
        assert time.monotonic() < deadline, "a forged X-Forwarded-For was believed"
        time.sleep(0.5)


def _stow_head(boundary: str, headers: dict[str, str], length: int) -> dict[str, str]:
    return {
        **headers,
        "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
        "Content-Length": str(length),
    }


def test_a_body_trickled_within_the_idle_timeout_is_cut_off_as_too_slow(
    hostile: Deployment,
) -> None:
    """16 bytes every quarter second never stall for the idle timeout (2 s here); they average
    far under the minimum rate, and are cut off: no upload is held open by a trickle."""
    admin = hostile.token()
    boundary = uuid.uuid4().hex
    whole = synthetic_instance(patient_id="MRN-TRICKLE")
    part = f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()

    def body() -> Iterator[bytes]:
        yield part + whole + b"\r\n" + part
        for _ in range(240):  # a minute of trickle, if nothing cuts it off
            time.sleep(0.25)
            yield b"\x00" * 16

    started = time.monotonic()
    answer = raw_post(
        hostile.services["ingest"].port,
        "/dicomweb/hostile/studies",
        _stow_head(boundary, admin, 10 * MiB),
        body(),
    )
    waited = time.monotonic() - started
    status_line, _, rest = answer.partition(b"\r\n")
    assert b" 408 " in status_line, answer[:500]
    # too slow (or, on a machine so loaded that the sender missed the idle timeout, stalled):
    # either way cut off within seconds, where a trickle used to hold it for a minute
    assert b"too slow" in rest or b"stalled" in rest, rest[:300]
    assert b"1 instance(s) before it were stored" in rest
    assert waited < 6 * IDLE_SECONDS, f"cut off only after {waited:.0f} s"


def test_one_caller_has_a_bounded_number_of_uploads_under_way(hostile: Deployment) -> None:
    """Eight uploads of one caller held open at once (the limit): a ninth is refused at once
    (429), before its body is read; another caller is not held up."""
    # a caller of its own (an API key): no upload of an earlier test counts against it
    made = httpx.post(
        f"http://127.0.0.1:{hostile.services['auth'].port}/auth/projects/hostile/keys",
        json={"name": "bounded", "role": "owner"},
        headers=hostile.token(),
        timeout=30,
    )
    assert made.status_code == 201, made.text
    admin = {"Authorization": f"Bearer {made.json()['key']}"}
    ingest = hostile.services["ingest"].port
    boundary = uuid.uuid4().hex
    release = threading.Event()

    def held_body() -> Iterator[bytes]:
        yield f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        while not release.wait(0.25):  # well under the idle timeout and the minimum rate
            yield bytes(64 * 1024)

    #: the answers of held uploads that ended before they were let go, and why
    ended: list[str] = []

    def hold() -> None:
        try:
            answer = raw_post(
                ingest,
                "/dicomweb/hostile/studies",
                _stow_head(boundary, admin, 64 * MiB),
                body=held_body(),
            )
        except Exception as exc:  # said below, with the others that ended
            answer = repr(exc).encode()
        if not release.is_set():
            ended.append(answer.decode(errors="replace")[:300])

    held = [threading.Thread(target=hold) for _ in range(8)]
    try:
        for thread in held:
            thread.start()
        deadline = time.monotonic() + 30  # until the eight are under way, a ninth is taken
        while True:
            # a held upload that ended early (a loaded machine) is started again: eight stay
            # under way; why it ended is said if the ninth is never refused
            for n, thread in enumerate(held):
                if not thread.is_alive():
                    held[n] = threading.Thread(target=hold)
                    held[n].start()
            ninth = httpx.post(
                f"http://127.0.0.1:{ingest}/dicomweb/hostile/studies",
                content=b"--x--\r\n",
                headers=_stow_head("x", admin, 7),
                timeout=10,
            )
            if ninth.status_code == 429 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert ninth.status_code == 429, (ninth.text, ended)
        assert "uploads under way" in ninth.json()["detail"]
        other = httpx.post(  # another caller meanwhile: not held up
            f"http://127.0.0.1:{ingest}/dicomweb/hostile/studies",
            content=b"--x--\r\n",
            headers=_stow_head("x", hostile.token(), 7),
            timeout=10,
        )
        assert other.status_code != 429, other.text
    finally:
        release.set()
        for thread in held:
            thread.join(60)

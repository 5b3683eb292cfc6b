"""An association's pynetdicom threads wait for work instead of polling
(giftcloud_dicom.reactors): still answering at once, still ending when released or
aborted, and looking round about every WAIT_SECONDS while idle rather than every
millisecond (pynetdicom's own loop)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from giftcloud_dicom import reactors
from giftcloud_dicom.reactors import WAIT_SECONDS, wait_for_work
from pynetdicom import AE, evt
from pynetdicom.events import Event
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import AssociationSocket, ThreadedAssociationServer


def _wait_until(check: Any, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return False


@pytest.fixture
def server() -> Iterator[ThreadedAssociationServer]:
    def opened(event: Event) -> None:
        wait_for_work(event.assoc)

    ae = AE()
    ae.add_supported_context(Verification)
    running = ae.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_CONN_OPEN, opened)]
    )
    assert isinstance(running, ThreadedAssociationServer)
    yield running
    running.shutdown()


def _client(server: ThreadedAssociationServer) -> Any:
    ae = AE()
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", server.server_address[1])
    assert assoc.is_established
    return assoc


def _served(server: ThreadedAssociationServer) -> Any:
    assert _wait_until(lambda: len(server.active_associations) == 1)
    return server.active_associations[0]


def test_an_idle_association_looks_round_every_wait_not_every_millisecond(
    server: ThreadedAssociationServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assoc = _client(server)
    served = _served(server)
    transport = served.dul.socket
    assert type(transport).__name__ == "_WaitingSocket"
    looks = 0
    ready = type(transport).ready.fget

    def counted(self: AssociationSocket) -> bool:
        nonlocal looks
        looks += 1
        return bool(ready(self))

    monkeypatch.setattr(type(transport), "ready", property(counted))
    started = time.monotonic()
    time.sleep(0.5)
    idle = time.monotonic() - started
    monkeypatch.undo()
    # pynetdicom's own loop looks ~1000 times a second; waiting, ~1 / WAIT_SECONDS (50)
    assert looks <= idle / WAIT_SECONDS * 2 + 5, looks
    assert assoc.send_c_echo().Status == 0x0000  # woken by the data, answers
    assoc.release()
    assert _wait_until(lambda: not server.active_associations)
    assert transport.wake.closed  # its pipe closed with the connection


def test_answers_come_at_once_and_an_abort_ends_it(server: ThreadedAssociationServer) -> None:
    assoc = _client(server)
    for _ in range(20):
        assert assoc.send_c_echo().Status == 0x0000
    assoc.abort()
    assert _wait_until(lambda: not server.active_associations)


def test_the_server_aborting_wakes_its_threads(server: ThreadedAssociationServer) -> None:
    """An abort or kill from another thread (the server stopping) reaches a DUL thread
    that is waiting: the A-ABORT is put on its queue, which wakes it."""
    assoc = _client(server)
    served = _served(server)
    aborting = threading.Thread(target=served.abort)
    aborting.start()
    aborting.join(5)
    assert not aborting.is_alive()
    assert _wait_until(lambda: assoc.is_aborted)
    assert _wait_until(lambda: not server.active_associations)


def test_unexpected_insides_are_left_polling(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=reactors.__name__):
        wait_for_work(object())
    assert "poll" in caplog.text


def test_a_closed_wake_never_reaches_a_connection_given_its_descriptor() -> None:
    """The association's connection closes its wake in one thread while another may still
    wake it: nothing may be written to (or read from) a descriptor reused since."""
    import socket

    wake = reactors._Wake()
    wake()
    wake.close()
    assert wake.closed
    other_reader, other_writer = socket.socketpair()  # takes the numbers just freed
    other_reader.setblocking(False)
    try:
        wake()  # a late put on the association's queue
        wake.wait(other_reader, 0.01)  # a late look round
        other_writer.send(b"kept")
        assert other_reader.recv(16) == b"kept"  # nothing added, nothing taken
    finally:
        other_reader.close()
        other_writer.close()

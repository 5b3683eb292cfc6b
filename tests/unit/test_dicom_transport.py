"""The DICOM servers' transport (giftcloud_dicom.scp, pdu_guard): every accepted connection
answers without Nagle's delay (TCP_NODELAY) and acknowledges what it reads at once
(TCP_QUICKACK before every read: the kernel clears it as it goes), so a sender whose own
Nagle is on -- dcmtk's storescu as Debian builds it -- never waits 40 ms for an ACK
before sending a data set. (These were lost once when the guard took over the reads.)"""

from __future__ import annotations

import copy
import socket
from typing import Any

import pytest
from giftcloud_dicom.pdu_guard import Connections, PduGuard
from giftcloud_dicom.scp import Contexts, GuardedServer, start_server
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

QUICKACK = getattr(socket, "TCP_QUICKACK", None)


def test_an_accepted_connection_has_nodelay() -> None:
    ae = AE()
    ae.add_supported_context(Verification)
    server = ae.make_server(("127.0.0.1", 0), server_class=GuardedServer)
    try:
        client = socket.create_connection(server.server_address[:2])
        accepted, _ = server.get_request()
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        accepted.close()
        client.close()
    finally:
        server.server_close()


class _Recorded:
    """A socket that records what is done to it, answering reads from ``data``."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.calls: list[str] = []

    def setsockopt(self, level: int, option: int, value: int) -> None:
        if option == QUICKACK:
            self.calls.append("quickack")

    def gettimeout(self) -> float | None:
        return None

    def settimeout(self, value: float | None) -> None:
        pass

    def recv(self, size: int) -> bytes:
        self.calls.append("recv")
        chunk, self.data = self.data[:size], self.data[size:]
        return chunk


@pytest.mark.skipif(QUICKACK is None, reason="TCP_QUICKACK is Linux's")
def test_every_read_of_the_guard_acknowledges_at_once() -> None:
    pdu = bytes([0x05, 0, 0, 0, 0, 4]) + b"\0\0\0\0"  # an A-RELEASE-RQ
    raw = _Recorded(pdu)
    assoc: Any = type("A", (), {})()
    assoc.dul = type("D", (), {})()
    assoc.dul.socket = type("S", (), {})()
    assoc.dul.socket.socket = raw
    reads = PduGuard(assoc, 1024, 5.0, "127.0.0.1")
    assert reads(6) == pdu[:6] and reads(4) == pdu[6:]
    assert raw.calls == ["quickack", "recv", "quickack", "recv"], raw.calls


def test_contexts_are_copied_for_each_association_as_a_deepcopy_would() -> None:
    """pynetdicom deep-copies the server's contexts for every association (63 ms for the
    node's); the server's own copy gives equal, independent contexts without it."""
    from pydicom.uid import AllTransferSyntaxes
    from pynetdicom.presentation import AllStoragePresentationContexts

    ae = AE()
    ae.add_supported_context(Verification, AllTransferSyntaxes)
    for context in AllStoragePresentationContexts[:5]:
        assert context.abstract_syntax is not None
        ae.add_supported_context(context.abstract_syntax, AllTransferSyntaxes, True, True)
    server = start_server(ae, ("127.0.0.1", 0), [], Connections(4), "test", "PORT")
    try:
        assert isinstance(server.contexts, Contexts)
        original = server.contexts
        expected = [copy.deepcopy(c) for c in original]  # what pynetdicom's deepcopy gave
        copies = copy.deepcopy(server.contexts)
        assert [vars(c) for c in copies] == [vars(c) for c in expected]
        for context, twin in zip(original, copies, strict=True):
            assert twin is not context
            assert twin.transfer_syntax is not context.transfer_syntax
            # every other attribute is immutable (a UID, a number, a flag, None): sharing
            # it is a copy; a pynetdicom that adds a mutable one fails here
            for name, value in vars(context).items():
                if name != "_transfer_syntax":
                    assert value is None or isinstance(value, str | int | bool), name
        copies[1].add_transfer_syntax("1.2.3.4")
        copies[1].context_id = 7
        assert "1.2.3.4" not in original[1].transfer_syntax
        assert original[1].context_id != 7

        # an association made by the server negotiates on its own copy
        client = AE()
        client.add_requested_context(Verification)
        assoc = client.associate("127.0.0.1", server.server_address[1])
        assert assoc.is_established
        assert assoc.send_c_echo().Status == 0x0000
        assoc.release()
        assert [vars(c) for c in server.contexts] == [vars(c) for c in expected]
    finally:
        server.shutdown()
        server.server_close()

"""A DICOM server's transport guards (ingest's DICOM node, api's query/retrieve), applied
before anything of a PDU is held.

pynetdicom reads a PDU as its 6-byte header, then as many bytes as the header claims (up to
4 GiB), into memory, before any AE title or network is checked; and a connection that
trickles a byte at a time is never timed out (each byte resets the socket's timeout). So
each association's socket reads through :class:`PduGuard`: a PDU longer than the node
takes -- the maximum PDU it announced for P-DATA-TF once the association is up, a small
bound for anything else and for every PDU before -- is answered with an A-ABORT and the
connection closed, its body never read; and a PDU must arrive whole within a deadline.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

P_DATA_TF = 0x04
#: the largest PDU other than P-DATA-TF (and any PDU before the association is accepted):
#: an A-ASSOCIATE-RQ of 128 presentation contexts with many transfer syntaxes and a user
#: identity is well under this
OTHER_PDU_LIMIT = 256 * 1024
#: A-ABORT (PS3.8 9.3.8): source 2 (service provider), reason 6 (invalid PDU parameter)
A_ABORT = bytes([0x07, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x02, 0x06])
#: the slowest a PDU's body may come, beyond the deadline every PDU gets
MIN_BYTES_PER_SECOND = 64 * 1024


def _acknowledge_at_once(raw: socket.socket) -> None:
    """TCP_QUICKACK (Linux; the kernel clears it as it goes, so it is set before each read).
    A sender whose Nagle algorithm is on -- dcmtk's as Debian builds it, many modalities' --
    holds a C-STORE's data set back until its command PDU is acknowledged; with delayed
    ACKs that is 40 ms an instance (measured: storescu to a pynetdicom SCP, 44.7 ms an
    instance without this, 3.7 with it)."""
    if _QUICKACK is not None:
        with contextlib.suppress(OSError):
            raw.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)


_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)


class Connections:
    """Connections at once per address: counted from acceptance until the connection ends
    (pynetdicom keeps an association's thread for a while after its peer went away)."""

    def __init__(self, per_address: int) -> None:
        self.per_address = per_address
        self._held: Counter[str] = Counter()
        self._lock = threading.Lock()

    def admit(self, address: str) -> bool:
        with self._lock:
            if self._held[address] >= self.per_address:
                held = self._held[address]
                log.warning(
                    "closed a connection from %s: it holds %d already (the most from one address)",
                    address,
                    held,
                )
                return False
            self._held[address] += 1
            return True

    def release(self, address: str) -> None:
        with self._lock:
            self._held[address] -= 1
            if self._held[address] <= 0:
                del self._held[address]


class PduGuard:
    """Replaces an association socket's ``recv``: pynetdicom's DUL calls ``recv(6)`` for a
    PDU's header, then ``recv(length)`` for its body. Returns fewer bytes than asked for to
    refuse (pynetdicom then treats the connection as closed)."""

    def __init__(
        self,
        assoc: Any,
        p_data_limit: int,
        deadline_seconds: float,
        address: str,
        on_end: Callable[[], None] = lambda: None,
    ) -> None:
        self.assoc = assoc
        self.p_data_limit = p_data_limit
        self.deadline_seconds = deadline_seconds
        self.address = address
        self.header: bytes | None = None
        self.started = 0.0
        self.refused = False
        self._on_end: Callable[[], None] | None = on_end

    def ended(self) -> None:
        """The connection is over (closed by either side, or refused): said once."""
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            on_end()

    def __call__(self, nr_bytes: int) -> bytearray:
        if self.refused:  # aborted: nothing more is read from it
            return bytearray()
        raw: socket.socket = self.assoc.dul.socket.socket
        announced = self.header
        self.header = None
        pdu_type, _, length = struct.unpack(">BBL", announced) if announced else (0, 0, -1)
        if length != nr_bytes:  # a header (pynetdicom reads no body of an unknown type)
            self.started = 0.0
            header = self._read(raw, nr_bytes, first_byte_starts_clock=True)
            if len(header) == 6:
                self.header = bytes(header)
            else:
                self.ended()  # the peer closed (or timed out)
            return header
        established = bool(getattr(self.assoc, "is_established", False))
        limit = self.p_data_limit if pdu_type == P_DATA_TF and established else OTHER_PDU_LIMIT
        if length > limit:
            log.warning(
                "aborted the connection from %s: a PDU of type 0x%02X announces %d bytes;"
                " the node takes at most %d%s",
                self.address,
                pdu_type,
                length,
                limit,
                "" if established else " before an association is accepted",
            )
            self._abort(raw)
            return bytearray()
        body = self._read(raw, nr_bytes)
        if len(body) < nr_bytes:
            self._abort(raw)
        return body

    def _read(
        self, raw: socket.socket, nr_bytes: int, *, first_byte_starts_clock: bool = False
    ) -> bytearray:
        """Up to ``nr_bytes``; short when the peer closed or the PDU's deadline passed."""
        received = bytearray()
        idle = raw.gettimeout()
        allowed = self.deadline_seconds + nr_bytes / MIN_BYTES_PER_SECOND
        late = False
        try:
            while len(received) < nr_bytes:
                if self.started:
                    left = self.started + allowed - time.monotonic()
                    if left <= 0:
                        late = True
                        break
                    raw.settimeout(left if idle is None else min(left, idle))
                _acknowledge_at_once(raw)
                chunk = raw.recv(min(65536, nr_bytes - len(received)))
                if not chunk:
                    break
                if not received and first_byte_starts_clock:
                    self.started = time.monotonic()
                received += chunk
        except TimeoutError:
            late = bool(self.started)  # else: idle, no PDU begun (pynetdicom's own timeout)
        finally:
            raw.settimeout(idle)
        if late:
            log.warning(
                "aborted the connection from %s: a PDU did not arrive whole within %.0f s",
                self.address,
                allowed,
            )
        if len(received) == nr_bytes and not first_byte_starts_clock:
            self.started = 0.0  # the PDU is whole: the next one's clock starts at its header
        return received

    def _abort(self, raw: socket.socket) -> None:
        self.started = 0.0
        self.refused = True
        self.ended()
        try:
            raw.sendall(A_ABORT)
            raw.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def guard(
    assoc: Any, p_data_limit: int, deadline_seconds: float, connections: Connections
) -> PduGuard | None:
    """Read the association's PDUs through a :class:`PduGuard` (its connection counted in
    ``connections`` until it ends); None where pynetdicom's insides are not what this
    expects (then it is left as it is, and says so)."""
    transport = getattr(getattr(assoc, "dul", None), "socket", None)
    address = str(assoc.requestor.address)
    if transport is None or not hasattr(transport, "recv"):
        log.error("the DICOM node cannot guard its PDUs: pynetdicom's transport has changed")
        connections.release(address)
        return None
    reads = PduGuard(
        assoc, p_data_limit, deadline_seconds, address, lambda: connections.release(address)
    )
    transport.recv = reads
    return reads


def ended(assoc: Any) -> None:
    """At the end of an association's connection (EVT_CONN_CLOSE): it no longer counts."""
    reads = getattr(getattr(getattr(assoc, "dul", None), "socket", None), "recv", None)
    if isinstance(reads, PduGuard):
        reads.ended()

"""An association's two pynetdicom threads wait for work instead of looking for it.

pynetdicom 3 polls: its DUL thread wakes every millisecond to look at the socket and its
queues, and its association thread looks at its message queue as often, each waking
taking the GIL from the threads doing the work. Eight associations sending to the node
cost a third of a core that way while idle, and between the C-STOREs of busy ones.
:func:`wait_for_work`, called at EVT_CONN_OPEN (before either thread starts), makes both
wait: the DUL thread in ``select`` on its socket and on a pipe that anything put on its
queues (by any thread) or told to stop it writes to, the association thread on its
message queue. Each still looks round every :data:`WAIT_SECONDS` (its timers: ARTIM, the
network timeout). Where pynetdicom's insides are not what this expects, it leaves them
polling, and says so.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import select
import socket
import ssl
from typing import Any

from pynetdicom.transport import AssociationSocket

log = logging.getLogger(__name__)

#: the longest either thread waits before it looks round anyway (its timers)
WAIT_SECONDS = 0.02


class _Wake:
    """A socket pair: written to wake the DUL thread, read empty before it waits again.
    Socket objects rather than bare descriptors: once closed, a late write or read fails
    instead of reaching whatever connection was given the same descriptor number since."""

    def __init__(self) -> None:
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)

    @property
    def closed(self) -> bool:
        return self._reader.fileno() == -1

    def __call__(self) -> None:
        with contextlib.suppress(OSError):  # full (it wakes anyway) or closed (it is over)
            self._writer.send(b"\0")

    def wait(self, sock: socket.socket, seconds: float) -> None:
        """Until ``sock`` has data, a wake, or ``seconds``; then the wakes are read."""
        with contextlib.suppress(OSError, ValueError):  # closed meanwhile: nothing to wait on
            select.select([sock, self._reader], [], [], seconds)
        with contextlib.suppress(OSError):  # empty (would block) or closed
            while self._reader.recv(4096):
                pass

    def close(self) -> None:
        self._reader.close()
        self._writer.close()


class _WakingQueue(queue.Queue[Any]):
    def __init__(self, wake: _Wake) -> None:
        super().__init__()
        self.wake = wake

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        self.wake()


class _WaitingSocket(AssociationSocket):
    """The association's socket, whose ``ready`` (asked by the DUL thread when it has
    nothing to send) waits for data, or to be woken, before it answers."""

    wake: _Wake

    @property
    def ready(self) -> bool:
        sock = self.socket
        if isinstance(sock, socket.socket) and self._nothing_to_do(sock):
            self.wake.wait(sock, WAIT_SECONDS)
        return bool(AssociationSocket.ready.fget(self))  # type: ignore[attr-defined]

    def _nothing_to_do(self, sock: socket.socket) -> bool:
        dul = self._assoc.dul
        return (
            self._is_connected
            and not self.wake.closed
            and not dul._kill_thread
            and dul.event_queue.empty()
            and dul.to_provider_queue.empty()
            and not (isinstance(sock, ssl.SSLSocket) and sock.pending())
        )

    def close(self) -> None:
        super().close()
        self.wake.close()


def wait_for_work(assoc: Any) -> None:
    """At EVT_CONN_OPEN: the association's DUL and reactor threads wait for work."""
    dul = getattr(assoc, "dul", None)
    transport = getattr(dul, "socket", None)
    dimse = getattr(assoc, "dimse", None)
    queues = (getattr(dul, "event_queue", None), getattr(dul, "to_provider_queue", None))
    if (
        type(transport) is not AssociationSocket
        or not all(isinstance(found, queue.Queue) for found in queues)
        or not isinstance(getattr(dimse, "msg_queue", None), queue.Queue)
        or not hasattr(dul, "_kill_thread")
    ):
        log.warning("pynetdicom's threads poll: its insides are not what giftcloud expects")
        return
    _dul_waits(dul, transport)
    _reactor_waits(dimse)


def _dul_waits(dul: Any, transport: AssociationSocket) -> None:
    wake = _Wake()
    for name in ("event_queue", "to_provider_queue"):
        old: queue.Queue[Any] = getattr(dul, name)
        waking = _WakingQueue(wake)
        while not old.empty():
            waking.put(old.get_nowait())
        setattr(dul, name, waking)
    transport.__class__ = _WaitingSocket
    transport.wake = wake  # type: ignore[attr-defined]
    kill, stop = dul.kill_dul, dul.stop_dul

    def kill_dul() -> None:
        kill()
        wake()

    def stop_dul() -> bool:
        if dul.state_machine.current_state == "Sta1":
            dul._kill_thread = True  # as stop_dul does, then woken to see it
            wake()
        return bool(stop())

    dul.kill_dul, dul.stop_dul = kill_dul, stop_dul


def _reactor_waits(dimse: Any) -> None:
    """The association thread's look (``block=False``) waits on the queue of decoded DIMSE
    messages; a blocking read (an answer awaited, as in C-GET's C-STOREs) is pynetdicom's."""
    messages: queue.Queue[Any] = dimse.msg_queue
    blocking = dimse.get_msg

    def get_msg(block: bool = False) -> tuple[Any, Any]:
        if block:
            answer: tuple[Any, Any] = blocking(block=True)
            return answer
        try:
            found: tuple[Any, Any] = messages.get(timeout=WAIT_SECONDS)
        except queue.Empty:
            return None, None
        return found

    dimse.get_msg = get_msg

"""How the services' HTTP server (uvicorn) runs: one place for what it must not do on its own.

* It does not believe ``X-Forwarded-For``: uvicorn's default takes it from any peer on
  127.0.0.1, so a client on the same host (or behind a proxy nobody trusted) could be any
  address it liked. The services decide the client's address themselves, from
  ``GIFTCLOUD_NETWORK__TRUSTED_PROXIES`` (:func:`giftcloud_core.access.request_address`).
* It holds at most :data:`MAX_HEAD_BYTES` of a request's line and headers: more is answered
  431 and the connection closed before it is kept (httptools, uvicorn's parser, has no
  limit of its own; nginx, where it fronts the services, stops at 32 KiB).
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: the most of a request's head (request line and headers) a service holds
MAX_HEAD_BYTES = 64 * 1024
_PIECE = 8 * 1024


class BoundedHeadProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, fed a request's head a piece at a time and refusing it
    (431) once it passes :data:`MAX_HEAD_BYTES`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        while data and self._in_head:
            room = MAX_HEAD_BYTES - self._head_bytes
            if room <= 0:
                self._refuse()
                return
            cut = min(room, _PIECE)
            piece, data = data[:cut], data[cut:]
            self._head_bytes += len(piece)
            super().data_received(piece)
            if self.transport.is_closing():
                return
        if data:
            super().data_received(data)

    def _refuse(self) -> None:
        message = f"the request's line and headers are over {MAX_HEAD_BYTES} bytes".encode()
        self.logger.warning("refused a request from %s: its head is too large", self.client)
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: text/plain; charset=utf-8\r\n"
            b"content-length: " + str(len(message)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + message
        )
        self.transport.close()


def server_options() -> dict[str, Any]:
    """What every giftcloud server passes to uvicorn."""
    return {"proxy_headers": False, "http": BoundedHeadProtocol}

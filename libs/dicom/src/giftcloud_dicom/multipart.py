"""multipart/related bodies (RFC 2387), as STOW-RS sends them, parsed as a stream.

python-multipart does the parsing; :class:`PartReader` adds what STOW-RS needs around it:
a preamble before the first boundary, a ceiling on each part and on the number of parts
(a part past its ceiling is counted, not kept), and a body that stops before its closing
boundary is refused.
"""

from __future__ import annotations

import re
import tempfile
import uuid
from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser

_PARAM = re.compile(r';\s*([A-Za-z0-9_-]+)\s*=\s*("([^"]*)"|[^;\s]+)')
#: bytes of preamble looked through for the first boundary before the body is refused
_MAX_PREAMBLE = 64 * 1024
#: a part being received is held in memory up to this, and on disk (a temporary file)
#: beyond: a slow or stalled upload of a large instance holds no memory for it
SPOOL_BYTES = 4 * 1024 * 1024


class MultipartError(ValueError):
    """A body that is not the multipart/related it should be; ``status`` is the HTTP status
    that says so (400 malformed, 413 too many parts, 415 not the media type taken)."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(MultipartError):
    status = 400


class PayloadTooLarge(MultipartError):
    status = 413


class UnsupportedMediaType(MultipartError):
    status = 415


@dataclass(frozen=True)
class Part:
    headers: dict[str, str]
    body: bytes
    #: bytes the part had; more than ``len(body)`` when it passed the ceiling and was dropped
    size: int

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "application/dicom").split(";")[0].strip().lower()

    @property
    def too_large(self) -> bool:
        return self.size > len(self.body)


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    media = value.split(";")[0].strip().lower()
    params = {
        m.group(1).lower(): (m.group(3) if m.group(3) is not None else m.group(2))
        for m in _PARAM.finditer(value)
    }
    return media, params


def boundary_of(content_type: str) -> bytes:
    media, params = parse_content_type(content_type)
    if media != "multipart/related":
        raise UnsupportedMediaType(
            f'STOW-RS takes multipart/related; type="application/dicom", not {media or "nothing"}'
        )
    kind = params.get("type", "application/dicom").lower()
    if kind != "application/dicom":
        raise UnsupportedMediaType(f"only application/dicom parts are accepted, not {kind}")
    boundary = params.get("boundary")
    if not boundary:
        raise BadRequest("the Content-Type has no multipart boundary")
    if len(boundary) > 70:  # RFC 2046 §5.1.1
        raise BadRequest("the multipart boundary is longer than 70 characters")
    return boundary.encode("latin-1")


def _spool() -> tempfile.SpooledTemporaryFile[bytes]:
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, prefix="giftcloud-part-")


@dataclass
class _Current:
    headers: dict[str, str] = field(default_factory=dict)
    name: bytearray = field(default_factory=bytearray)
    value: bytearray = field(default_factory=bytearray)
    body: tempfile.SpooledTemporaryFile[bytes] | None = None
    size: int = 0

    def discard(self) -> None:
        if self.body is not None:
            self.body.close()
            self.body = None


class PartReader:
    """Feed it the body chunk by chunk; each :meth:`feed` returns the parts it completed.

    It holds at most one part (up to ``max_part_bytes``; past :data:`SPOOL_BYTES` of it in
    a temporary file) and the parts completed by one chunk. Past ``max_parts`` parts it raises :class:`PayloadTooLarge`; :meth:`close` raises
    :class:`BadRequest` for a body that ended before its closing boundary.
    """

    def __init__(self, boundary: bytes, *, max_part_bytes: int, max_parts: int) -> None:
        self._delimiter = b"--" + boundary
        self._max_part_bytes = max_part_bytes
        self._max_parts = max_parts
        self._preamble = bytearray()
        self._started = False
        self._ended = False
        self._count = 0
        self._current = _Current()
        self._done: list[Part] = []
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._begin,
                "on_header_field": self._header_name,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_part_data": self._data,
                "on_part_end": self._end_part,
                "on_end": self._end,
            },
            max_header_count=16,
        )

    def feed(self, chunk: bytes) -> list[Part]:
        if not self._started:
            chunk = self._skip_preamble(chunk)
            if not chunk:
                return []
        if self._ended:
            return []  # the epilogue, ignored (RFC 2046)
        try:
            self._parser.write(chunk)
        except MultipartParseError as exc:
            raise BadRequest(f"the multipart body is malformed: {exc}") from exc
        done, self._done = self._done, []
        return done

    def close(self) -> None:
        self._current.discard()
        if not self._started:
            raise BadRequest("the body does not contain the multipart boundary")
        if not self._ended:
            raise BadRequest(
                f"the multipart body has no closing boundary after part {self._count}"
                " (truncated upload?)"
            )

    def _skip_preamble(self, chunk: bytes) -> bytes:
        """What follows the preamble (RFC 2046 allows text before the first boundary)."""
        self._preamble += chunk
        buffered = bytes(self._preamble)
        if buffered.startswith(self._delimiter):
            start = 0
        else:
            found = buffered.find(b"\r\n" + self._delimiter)
            if found < 0:
                if len(buffered) > _MAX_PREAMBLE:
                    raise BadRequest("the body does not contain the multipart boundary")
                return b""
            start = found + 2
        self._started = True
        self._preamble = bytearray()
        return buffered[start:]

    def _begin(self) -> None:
        self._count += 1
        if self._count > self._max_parts:
            raise PayloadTooLarge(
                f"more than {self._max_parts} parts in one request; send them in several"
            )
        self._current.discard()
        self._current = _Current()

    def _header_name(self, data: bytes, start: int, end: int) -> None:
        self._current.name += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._current.value += data[start:end]

    def _header_end(self) -> None:
        current = self._current
        name = current.name.decode("latin-1").strip().lower()
        current.headers[name] = current.value.decode("latin-1").strip()
        current.name, current.value = bytearray(), bytearray()

    def _data(self, data: bytes, start: int, end: int) -> None:
        current = self._current
        current.size += end - start
        if current.size <= self._max_part_bytes:
            if current.body is None:
                current.body = _spool()
            current.body.write(data[start:end])
        else:
            current.discard()  # past the ceiling: counted, not kept

    def _end_part(self) -> None:
        current = self._current
        body = b""
        if current.body is not None and current.size <= self._max_part_bytes:
            current.body.seek(0)
            body = current.body.read()
        current.discard()
        self._done.append(Part(current.headers, body, current.size))
        self._current = _Current()

    def _end(self) -> None:
        self._ended = True


def related(parts: list[bytes], part_type: str = "application/dicom") -> tuple[bytes, str]:
    """A multipart/related body of ``parts`` (each of ``part_type``) and its Content-Type."""
    boundary = uuid.uuid4().hex
    body = bytearray()
    for data in parts:
        body += f"--{boundary}\r\nContent-Type: {part_type}\r\n\r\n".encode()
        body += data
        body += b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return bytes(body), f'multipart/related; type="{part_type}"; boundary={boundary}'

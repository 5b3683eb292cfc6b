"""multipart/related bodies (RFC 2387), as STOW-RS sends them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from giftcloud_core.errors import BadRequest, UnsupportedMediaType

_PARAM = re.compile(r';\s*([A-Za-z0-9_-]+)\s*=\s*("([^"]*)"|[^;\s]+)')


@dataclass(frozen=True)
class Part:
    headers: dict[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "application/dicom").split(";")[0].strip().lower()


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
    return boundary.encode("latin-1")


def split_parts(body: bytes, boundary: bytes) -> list[Part]:
    delimiter = b"--" + boundary
    position = body.find(delimiter)
    if position < 0:
        raise BadRequest("the body does not contain the multipart boundary")
    parts: list[Part] = []
    while True:
        position += len(delimiter)
        if body[position : position + 2] == b"--":
            return parts
        line_end = body.find(b"\r\n", position)
        if line_end < 0:
            raise BadRequest("the multipart body ends inside a boundary line")
        start = line_end + 2
        end = body.find(b"\r\n" + delimiter, start)
        if end < 0:
            raise BadRequest("the multipart body has no closing boundary (truncated upload?)")
        parts.append(_part(body[start:end]))
        position = end + 2


def _part(raw: bytes) -> Part:
    if raw.startswith(b"\r\n"):
        return Part({}, raw[2:])
    head_end = raw.find(b"\r\n\r\n")
    if head_end < 0:
        raise BadRequest("a multipart part has no blank line after its headers")
    headers: dict[str, str] = {}
    for line in raw[:head_end].decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Part(headers, raw[head_end + 4 :])

"""A Part 10 file (PS3.10 §7): its meta information, its transfer syntax, a deflated one
inflated within a limit; the few attributes a summary needs."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from giftcloud_dicom.encode import element_bytes
from giftcloud_dicom.raw import (
    DEFLATED,
    EXPLICIT_BE,
    EXPLICIT_LE,
    IMPLICIT_LE,
    PREAMBLE,
    Element,
    Malformed,
    Reader,
    Syntax,
)


@dataclass(frozen=True)
class Part10:
    """A parsed file: its meta elements and the dataset's buffer and syntax."""

    meta: dict[int, str]
    buf: bytes
    start: int
    syntax: Syntax
    transfer_syntax: str


#: the most a deflated dataset may inflate to when a caller names no ceiling
DEFAULT_MAX_INFLATED = 512 * 1024**2


_INFLATE_INPUT = 64 * 1024


_INFLATE_OUTPUT = 1024 * 1024


class InflateLimit(Malformed):
    """A deflated dataset that inflates past the ceiling: refused before it takes the memory."""


def inflate(data: bytes | memoryview, limit: int) -> bytes:
    """Raw deflate (RFC 1951) inflated as a stream: :class:`InflateLimit` when it would pass
    ``limit`` bytes, :class:`Malformed` for a broken stream.

    The size is measured first, keeping nothing, so refusing a deflate bomb costs CPU time
    and about a megabyte, never the bomb's size; only a stream within the limit is kept.
    """
    size = _inflate(data, limit, keep=None)
    pieces: list[bytes] = []
    _inflate(data, size, keep=pieces)
    return b"".join(pieces)


def _inflate(data: bytes | memoryview, limit: int, keep: list[bytes] | None) -> int:
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total = 0
    view = memoryview(data)

    def take(piece: bytes) -> None:
        nonlocal total
        total += len(piece)
        if total > limit:
            raise InflateLimit(
                f"the deflated dataset inflates to more than {limit} bytes, the limit"
                f" (from {len(view)} bytes deflated)"
            )
        if keep is not None:
            keep.append(piece)

    try:
        for offset in range(0, len(view), _INFLATE_INPUT):
            pending: bytes | memoryview = view[offset : offset + _INFLATE_INPUT]
            while pending and not inflater.eof:
                take(inflater.decompress(pending, _INFLATE_OUTPUT))
                pending = inflater.unconsumed_tail
            if inflater.eof:
                break
        while not inflater.eof:  # all input taken: what zlib still holds comes out bounded too
            piece = inflater.decompress(b"", _INFLATE_OUTPUT)
            if not piece:
                break
            take(piece)
    except zlib.error as exc:
        raise Malformed(f"deflated dataset cannot be inflated: {exc}") from exc
    if not inflater.eof:
        raise Malformed("deflated dataset cannot be inflated: its deflate stream is cut short")
    return total


def _meta(data: bytes) -> tuple[dict[int, str], list[Element], int]:
    """The file meta information: values of its text elements, its elements, where it ends."""
    if len(data) < PREAMBLE + 4 or data[PREAMBLE : PREAMBLE + 4] != b"DICM":
        raise Malformed("no DICM prefix: not a DICOM Part 10 file")
    reader = Reader(data)
    meta: dict[int, str] = {}
    elements: list[Element] = []
    position = PREAMBLE + 4
    explicit = Syntax(False, True)
    while position + 8 <= len(data):
        (group,) = struct.unpack_from("<H", data, position)
        if group != 0x0002:
            break
        element = reader.element(position, len(data), explicit)
        values = reader.text(element) if element.vr in ("UI", "SH", "AE") else []
        meta[element.tag] = values[0] if values else ""
        elements.append(element)
        position = element.end
    if not meta.get(0x00020010, ""):
        raise Malformed("no TransferSyntaxUID in the file meta information")
    return meta, elements, position


def open_part10(data: bytes, *, max_inflated: int = DEFAULT_MAX_INFLATED) -> Part10:
    meta, _, position = _meta(data)
    transfer_syntax = meta[0x00020010]
    if transfer_syntax in DEFLATED:
        body = inflate(memoryview(data)[position:], max_inflated)
        return Part10(meta, body, 0, Syntax(False, True), EXPLICIT_LE)
    little = transfer_syntax != EXPLICIT_BE
    implicit = transfer_syntax == IMPLICIT_LE
    if position + 6 <= len(data):
        # files whose dataset is not encoded as their meta says exist: follow the bytes
        vr = data[position + 4 : position + 6]
        looks_explicit = vr.isalpha() and vr.isupper()
        if implicit != (not looks_explicit):
            implicit = not looks_explicit
            transfer_syntax = IMPLICIT_LE if implicit else EXPLICIT_LE
    return Part10(meta, data, position, Syntax(implicit, little), transfer_syntax)


def transfer_syntax_of(data: bytes) -> str:
    """The TransferSyntaxUID the file's meta information names."""
    meta, _, _ = _meta(data)
    return meta[0x00020010]


def is_deflated(data: bytes) -> bool:
    """True when the file's dataset is deflated whole (its meta says so)."""
    return transfer_syntax_of(data) in DEFLATED


def undeflate(data: bytes, *, max_inflated: int = DEFAULT_MAX_INFLATED) -> bytes:
    """The same file in Explicit VR Little Endian when it is deflated (inflated as a bounded
    stream, :class:`InflateLimit` past ``max_inflated``), else ``data`` itself: readers that
    inflate whole (pydicom) are given this instead."""
    meta, elements, position = _meta(data)
    if meta[0x00020010] not in DEFLATED:
        return data
    body = inflate(memoryview(data)[position:], max_inflated)
    explicit = Syntax(False, True)
    kept = b"".join(
        element_bytes(0x00020010, "UI", EXPLICIT_LE, explicit)
        if element.tag == 0x00020010
        else data[element.start : element.end]
        for element in elements
        if element.tag != 0x00020000
    )
    group_length = element_bytes(0x00020000, "UL", len(kept), explicit)
    return data[: PREAMBLE + 4] + group_length + kept + body


def summary(data: bytes, *, max_inflated: int = DEFAULT_MAX_INFLATED) -> dict[str, str]:
    """The identifying UIDs of a (de-identified) file and its subject label, read raw."""
    part = open_part10(data, max_inflated=max_inflated)
    reader = Reader(part.buf)
    wanted = {
        0x00100020: "subject",
        0x0020000D: "study",
        0x0020000E: "series",
        0x00080018: "sop",
        0x00080016: "sop_class",
    }
    facts = dict.fromkeys(wanted.values(), "")
    for element in reader.elements(part.start, len(part.buf), part.syntax):
        if element.tag in wanted:
            facts[wanted[element.tag]] = (reader.text(element) or [""])[0]
    facts["transfer_syntax"] = part.transfer_syntax
    return facts

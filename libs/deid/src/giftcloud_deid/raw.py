"""A minimal DICOM Part 10 reader and writer on raw bytes, for de-identification.

It finds element boundaries (tag, VR, value offsets; sequences and encapsulated pixel
data walked to their ends) without converting any value, so the engine can copy every
element it keeps byte for byte and encode only what it changes. Values are decoded on
request. Anything malformed raises :class:`Malformed` with a reason.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from pydicom.datadict import dictionary_VR

PREAMBLE = 128
ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
UNDEFINED = 0xFFFFFFFF
#: explicit VRs with a 4-byte length (PS3.5 Table 7.1-1)
LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
#: the syntaxes whose dataset is deflated whole (Deflated Explicit VR Little Endian and the
#: two JPIP Referenced Deflate ones); Deflated Image Frame Compression deflates frames only
DEFLATED = ("1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.4.95", "1.2.840.10008.1.2.4.205")


#: binary number VRs and their struct codes
_STRUCT = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d"}


class Malformed(ValueError):
    """Bytes that are not a well-formed DICOM Part 10 file; the message says where."""


@lru_cache(maxsize=8192)
def dictionary_vr(tag: int) -> str:
    """The VR the data dictionary gives a tag (UN for private and unknown tags)."""
    if (tag >> 16) & 1:
        return "SQ" if tag & 0xFFFF == 0 else "UN"
    try:
        vr = str(dictionary_VR(tag))
    except KeyError:
        return "UN"
    if " or " in vr:
        # OB or OW, US or SS...: the first is as good as any for an element we only copy
        return vr.split(" or ")[0]
    return vr


@dataclass(frozen=True, slots=True)
class Element:
    tag: int
    vr: str
    start: int  # first byte of the header
    value: int  # first byte of the value
    end: int  # one past the last byte (including delimiters of undefined lengths)
    length: int  # the declared length (UNDEFINED for undefined)
    implicit_items: bool = False  # an explicit-VR UN of undefined length: items are implicit LE


@dataclass(frozen=True)
class Syntax:
    implicit: bool
    little: bool

    @property
    def fmt(self) -> str:
        return "<" if self.little else ">"


class Reader:
    """Walks the elements of one buffer."""

    def __init__(self, buf: bytes | memoryview) -> None:
        self.buf = buf

    def elements(self, start: int, end: int, syntax: Syntax) -> list[Element]:
        found = []
        position = start
        while position < end:
            element = self.element(position, end, syntax)
            if element.tag in (ITEM_END, SEQUENCE_END):
                raise Malformed(f"unexpected delimiter at byte {position}")
            found.append(element)
            position = element.end
        return found

    def element(self, position: int, end: int, syntax: Syntax) -> Element:
        buf = self.buf
        if position + 8 > end:
            raise Malformed(f"truncated element header at byte {position}")
        fmt = syntax.fmt
        group, number = struct.unpack_from(fmt + "HH", buf, position)
        tag = (group << 16) | number
        if syntax.implicit or group == 0xFFFE:
            (length,) = struct.unpack_from(fmt + "I", buf, position + 4)
            vr = dictionary_vr(tag) if group != 0xFFFE else "NONE"
            value = position + 8
        else:
            raw_vr = bytes(buf[position + 4 : position + 6])
            if raw_vr in LONG_VRS:
                if position + 12 > end:
                    raise Malformed(f"truncated element header at byte {position}")
                (length,) = struct.unpack_from(fmt + "I", buf, position + 8)
                value = position + 12
            else:
                (length,) = struct.unpack_from(fmt + "H", buf, position + 6)
                value = position + 8
            try:
                vr = raw_vr.decode("ascii")
            except UnicodeDecodeError:
                raise Malformed(f"invalid VR at byte {position + 4}") from None
            if not vr.isalpha() or not vr.isupper():
                raise Malformed(f"invalid VR {vr!r} at byte {position + 4}")
        if length != UNDEFINED:
            if value + length > end:
                raise Malformed(
                    f"element ({group:04X},{number:04X}) at byte {position} runs past the end"
                )
            # an explicit UN holds its value as implicit VR LE (a sequence's items too)
            un_items = vr == "UN" and not syntax.implicit
            return Element(tag, vr, position, value, value + length, length, un_items)
        if group == 0xFFFE:
            return Element(tag, vr, position, value, value, length)
        if tag == 0x7FE00010 or vr in ("OB", "OW"):
            stop = self._skip_fragments(value, end, syntax)
            return Element(tag, vr, position, value, stop, length)
        implicit_items = vr == "UN" and not syntax.implicit
        if vr not in ("SQ", "UN"):
            raise Malformed(f"undefined length on a {vr} element at byte {position}")
        inner = Syntax(True, True) if implicit_items else syntax
        stop = self._skip_items(value, end, inner)
        return Element(tag, "SQ", position, value, stop, length, implicit_items)

    def _skip_fragments(self, position: int, end: int, syntax: Syntax) -> int:
        while position + 8 <= end:
            group, number, length = struct.unpack_from(syntax.fmt + "HHI", self.buf, position)
            tag = (group << 16) | number
            if tag == SEQUENCE_END:
                return position + 8
            if tag != ITEM or length == UNDEFINED or position + 8 + length > end:
                raise Malformed(f"broken encapsulated pixel data at byte {position}")
            position += 8 + length
        raise Malformed("encapsulated pixel data without its sequence delimiter")

    def _skip_items(self, position: int, end: int, syntax: Syntax) -> int:
        for item in self.items(position, end, syntax, undefined=True):
            position = item[2]
        return position + 8  # past the sequence delimiter, which items() checked

    def items(
        self, position: int, end: int, syntax: Syntax, *, undefined: bool
    ) -> Iterator[tuple[int, int, int]]:
        """(value start, value end, item end) of each item of a sequence value."""
        fmt = syntax.fmt + "HHI"
        while position + 8 <= end:
            group, number, length = struct.unpack_from(fmt, self.buf, position)
            tag = (group << 16) | number
            if tag == SEQUENCE_END:
                if not undefined:
                    raise Malformed(
                        f"sequence delimiter in a defined-length sequence at {position}"
                    )
                return
            if tag != ITEM:
                raise Malformed(f"expected an item at byte {position}")
            start = position + 8
            if length == UNDEFINED:
                stop = start
                while True:
                    if stop + 8 > end:
                        raise Malformed("item without its delimiter")
                    element = self.element(stop, end, syntax)
                    if element.tag == ITEM_END:
                        break
                    stop = element.end
                position = stop + 8
                yield (start, stop, position)
            else:
                if start + length > end:
                    raise Malformed(f"item at byte {position} runs past the end")
                position = start + length
                yield (start, position, position)
        if undefined:
            raise Malformed("sequence without its delimiter")

    def text(self, element: Element) -> list[str]:
        raw = bytes(
            self.buf[element.value : element.end if element.length != UNDEFINED else element.value]
        )
        text = raw.decode("latin-1").rstrip("\x00 ")
        return [v.strip() for v in text.split("\\")] if text else []

    def number(self, element: Element, syntax: Syntax) -> list[int | float]:
        code = _STRUCT.get(element.vr)
        if code is None:
            return []
        size = struct.calcsize(code)
        count = (element.end - element.value) // size
        return list(struct.unpack_from(f"{syntax.fmt}{count}{code}", self.buf, element.value))


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


# --- writing ---------------------------------------------------------------------------


def encode_value(vr: str, value: str | list[str] | int | float | bytes | None, fmt: str) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes):
        raw = value
    elif vr in _STRUCT:
        raw = struct.pack(fmt + _STRUCT[vr], value)
    else:
        values = value if isinstance(value, list) else [str(value)]
        raw = "\\".join(values).encode("latin-1", "replace")
    if len(raw) % 2:
        raw += b"\x00" if vr in ("UI", "OB", "UN") else b" "
    return raw


def header(tag: int, vr: str, length: int, syntax: Syntax) -> bytes:
    fmt = syntax.fmt
    group, number = tag >> 16, tag & 0xFFFF
    if syntax.implicit:
        return struct.pack(fmt + "HHI", group, number, length)
    code = vr.encode("ascii")
    if code in LONG_VRS:
        return struct.pack(fmt + "HH2s2xI", group, number, code, length)
    if length > 0xFFFF:
        raise Malformed(f"a {vr} value of {length} bytes does not fit")
    return struct.pack(fmt + "HH2sH", group, number, code, length)


def element_bytes(
    tag: int, vr: str, value: str | list[str] | int | float | bytes | None, syntax: Syntax
) -> bytes:
    raw = encode_value(vr, value, syntax.fmt)
    return header(tag, vr, len(raw), syntax) + raw


def sequence_bytes(tag: int, items: list[bytes], syntax: Syntax, *, as_un: bool = False) -> bytes:
    """A sequence of already-encoded item datasets, with defined lengths.

    ``as_un``: an explicit-VR UN of undefined length whose items are implicit VR LE
    (how a sequence with an unknown VR is carried, PS3.5 6.2.2).
    """
    fmt = ("<" if as_un else syntax.fmt) + "HHI"
    body = b"".join(struct.pack(fmt, 0xFFFE, 0xE000, len(item)) + item for item in items)
    if as_un:
        return header(tag, "UN", UNDEFINED, syntax) + body + struct.pack(fmt, 0xFFFE, 0xE0DD, 0)
    return header(tag, "SQ", len(body), syntax) + body


def file_meta(sop_class: str, sop_instance: str, transfer_syntax: str, version: str) -> bytes:
    explicit = Syntax(False, True)
    body = b"".join(
        (
            element_bytes(0x00020001, "OB", b"\x00\x01", explicit),
            element_bytes(0x00020002, "UI", sop_class, explicit),
            element_bytes(0x00020003, "UI", sop_instance, explicit),
            element_bytes(0x00020010, "UI", transfer_syntax, explicit),
            element_bytes(0x00020012, "UI", "1.2.826.0.1.3680043.8.498.1", explicit),
            element_bytes(0x00020013, "SH", version, explicit),
        )
    )
    return (
        b"\x00" * PREAMBLE + b"DICM" + element_bytes(0x00020000, "UL", len(body), explicit) + body
    )

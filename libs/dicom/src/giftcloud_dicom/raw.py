"""A minimal DICOM Part 10 reader and writer on raw bytes, for de-identification.

It finds element boundaries (tag, VR, value offsets; sequences and encapsulated pixel
data walked to their ends) without converting any value, so the engine can copy every
element it keeps byte for byte and encode only what it changes. Values are decoded on
request. Anything malformed raises :class:`Malformed` with a reason.
"""

from __future__ import annotations

import struct
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
STRUCT = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d"}


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
        code = STRUCT.get(element.vr)
        if code is None:
            return []
        size = struct.calcsize(code)
        count = (element.end - element.value) // size
        return list(struct.unpack_from(f"{syntax.fmt}{count}{code}", self.buf, element.value))

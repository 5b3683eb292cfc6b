"""DICOM JSON straight from the raw reader, for the common instance: Explicit VR Little
Endian (or an encapsulated syntax), the default, Latin-1 or UTF-8 character set, and
only the VRs read here. It makes what pydicom's ``Dataset.to_json_dict`` makes of the
same file, without building pydicom's dataset (archive's largest cost per instance);
for anything else (implicit or big-endian files, other character sets, UN, AT, an odd
value pydicom would check and drop) it answers None and the caller asks pydicom."""

from __future__ import annotations

import base64
import re
import struct
from typing import Any

from giftcloud_dicom.raw import UNDEFINED, Element, Reader, Syntax

EXPLICIT_LE = Syntax(False, True)
#: pydicom's bulk threshold, as archive gives it: 1024 base64 characters
INLINE_BYTES = (1024 // 4) * 3
BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW"})
NUMBERS = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d", "SV": "q", "UV": "Q"}
STRINGS = frozenset({"AS", "CS", "DA", "DT", "TM", "UI"})
TEXTS = frozenset({"SH", "LO", "UC"})
SINGLE_TEXTS = frozenset({"ST", "LT", "UT"})
#: what pydicom checks when it reads these strictly (a value it refuses: pydicom decides)
MAX_LENGTH = {"SH": 16, "LO": 64, "ST": 1024, "LT": 10240, "DS": 16, "IS": 12}
CHARSETS = {"": "iso8859", "ISO_IR 6": "iso8859", "ISO_IR 100": "latin_1", "ISO_IR 192": "UTF8"}
_DS = re.compile(r" *[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)? *")
_IS = re.compile(r" *[-+]?\d+ *")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class NotCommon(Exception):
    """Something this reader leaves to pydicom."""


def fast_json(buf: bytes, start: int, transfer_syntax: str, bulk_uri: str) -> dict[str, Any] | None:
    """The dataset's DICOM JSON (bulk data under ``bulk_uri``), or None: ask pydicom."""
    if transfer_syntax in ("1.2.840.10008.1.2", "1.2.840.10008.1.2.2"):
        return None
    reader = Reader(buf)
    try:
        elements = reader.elements(start, len(buf), EXPLICIT_LE)
        charset = ""
        for element in elements:
            if element.tag == 0x00080005:
                charset = _raw(reader, element).decode("latin-1").strip(" \x00")
        if charset not in CHARSETS:
            return None
        return _dataset(reader, elements, CHARSETS[charset], bulk_uri, top=True)
    except (NotCommon, ValueError, UnicodeDecodeError, struct.error):
        return None


def _raw(reader: Reader, element: Element) -> bytes:
    return bytes(reader.buf[element.value : element.end])


def _dataset(
    reader: Reader, elements: list[Element], encoding: str, bulk_uri: str, *, top: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for element in elements:
        group = element.tag >> 16
        if group in (0x0000, 0x0002) or group >= 0xFFFA or (not top and element.tag == 0x00080005):
            raise NotCommon
        key = f"{element.tag:08X}"
        if key in out:
            raise NotCommon
        out[key] = _element(reader, element, encoding, bulk_uri)
    return out


def _element(reader: Reader, element: Element, encoding: str, bulk_uri: str) -> dict[str, Any]:
    vr = element.vr
    json: dict[str, Any] = {"vr": vr}
    if vr == "SQ":
        if element.implicit_items:
            raise NotCommon
        undefined = element.length == UNDEFINED
        json["Value"] = [
            _dataset(reader, reader.elements(a, b, EXPLICIT_LE), encoding, bulk_uri, top=False)
            for a, b, _ in reader.items(
                element.value, element.end, EXPLICIT_LE, undefined=undefined
            )
        ]
        return json
    if element.length == UNDEFINED:
        if element.tag != 0x7FE00010:
            raise NotCommon
        json["BulkDataURI"] = f"{bulk_uri}/{element.tag:08X}"
        return json
    raw = _raw(reader, element)
    if vr in BINARY_VRS:
        if raw:
            if len(raw) > INLINE_BYTES:
                json["BulkDataURI"] = f"{bulk_uri}/{element.tag:08X}"
            else:
                json["InlineBinary"] = base64.b64encode(raw).decode()
        return json
    values = _values(vr, raw, encoding)
    if values:
        json["Value"] = values
    return json


def _values(vr: str, raw: bytes, encoding: str) -> list[Any]:
    if vr in NUMBERS:
        size = struct.calcsize(NUMBERS[vr])
        if len(raw) % size:
            raise NotCommon
        return list(struct.unpack(f"<{len(raw) // size}{NUMBERS[vr]}", raw))
    if vr == "AE":
        parts = [v.strip() for v in raw.decode("iso8859").split("\\")]
        return [] if parts == [""] else parts
    if vr in STRINGS:
        return _multi(raw.decode("iso8859"))
    if vr == "UR":
        text = raw.decode("iso8859").rstrip()
        return [text] if text else []
    if vr == "DS":
        return [_number(v, _DS, "DS", float) for v in _multi(raw.decode("iso8859").strip())]
    if vr == "IS":
        return [_number(v, _IS, "IS", int) for v in _multi(raw.decode("iso8859"))]
    if vr in TEXTS:
        parts = [_checked(v.rstrip("\0 "), vr) for v in raw.decode(encoding).split("\\")]
        return [] if parts == [""] else parts
    if vr in SINGLE_TEXTS:
        text = _checked(raw.decode(encoding).rstrip("\0 "), vr)
        return [text] if text else []
    if vr == "PN":
        text = raw.rstrip(b"\x00 ").decode(encoding)
        if not text:
            return []
        return [_person(v) for v in text.split("\\")]
    raise NotCommon  # AT, UN and anything else: pydicom's


def _multi(text: str) -> list[str]:
    """pydicom's multi_string: trailing padding off the whole, then the values."""
    while text and text.endswith((" ", "\x00")):
        text = text[:-1]
    return [] if not text else text.split("\\")


def _number(text: str, form: re.Pattern[str], vr: str, kind: type[Any]) -> Any:
    if not form.fullmatch(text) or len(text) > MAX_LENGTH[vr]:
        raise NotCommon
    return kind(float(text)) if kind is float else int(text)


def _checked(text: str, vr: str) -> str:
    if len(text) > MAX_LENGTH.get(vr, 1 << 32) or _CONTROL.search(text):
        raise NotCommon
    return text


def _person(value: str) -> dict[str, str]:
    components = value.split("=")
    while components and not components[-1]:
        components.pop()
    if not components or len(components) > 3:
        raise NotCommon
    if any(len(part) > 64 or _CONTROL.search(part) for part in components):
        raise NotCommon
    names = ("Alphabetic", "Ideographic", "Phonetic")
    return {name: part for name, part in zip(names, components, strict=False)}

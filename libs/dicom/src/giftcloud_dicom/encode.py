"""Elements written back: values encoded for their VR, headers, sequences, file meta."""

from __future__ import annotations

import struct

from giftcloud_dicom.raw import LONG_VRS, PREAMBLE, STRUCT, UNDEFINED, Malformed, Syntax


def encode_value(vr: str, value: str | list[str] | int | float | bytes | None, fmt: str) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes):
        raw = value
    elif vr in STRUCT:
        raw = struct.pack(fmt + STRUCT[vr], value)
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

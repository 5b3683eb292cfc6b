"""What a WADO-RS answer is made of (PS3.18 §8.7): the media type the Accept header asks
for among those it can be given, multipart/related bodies, frames in the syntax asked."""

import uuid
from dataclasses import dataclass

from fastapi.responses import Response
from giftcloud_core.errors import NotAcceptable

from giftcloud_api.dicomweb import rendering as pixels
from giftcloud_api.dicomweb import transcoding
from giftcloud_api.models import Instance

DICOM_JSON = "application/dicom+json"


def media_ranges(accept: str) -> list[tuple[str, dict[str, str]]]:
    """An Accept header's media ranges, most preferred first (by q, then as written)."""
    ranges = []
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        values = {}
        for param in params:
            key, _, value = param.partition("=")
            values[key.strip().lower()] = value.strip().strip('"')
        if media:
            ranges.append((media.lower(), values))

    def weight(entry: tuple[str, dict[str, str]]) -> float:
        try:
            return -float(entry[1].get("q", "1"))
        except ValueError:
            return 0.0

    return sorted(ranges, key=weight) or [("*/*", {})]


#: what a DICOM JSON answer (QIDO-RS, WADO-RS metadata) satisfies in an Accept header
JSON_RANGES = frozenset({"application/dicom+json", "application/json", "application/*", "*/*"})


def json_accepted(accept: str) -> None:
    """A search or metadata answer is DICOM JSON: an Accept header that does not take it
    is 406, with the reason (PS3.18 makes DICOM JSON required and XML optional)."""
    for media, params in media_ranges(accept):
        if media in JSON_RANGES and params.get("q", "1") not in ("0", "0.0", "0.00", "0.000"):
            return
    raise NotAcceptable(
        "searches and metadata are answered in application/dicom+json (DICOM JSON) here;"
        ' PS3.19 XML (multipart/related; type="application/dicom+xml") is optional in'
        " PS3.18 and not offered"
    )


@dataclass(frozen=True)
class Answer:
    """How instances go out: ``how`` is 'multipart', 'bare' (one instance, ``Accept:
    application/dicom``) or 'zip'; ``syntax`` the transfer syntax asked (``""`` when none
    was named: Explicit VR Little Endian; ``*``: as stored)."""

    how: str
    syntax: str

    def target(self, instance: Instance) -> str | None:
        """The syntax ``instance`` is sent in, None when as stored."""
        return transcoding.target(self.syntax, instance.transfer_syntax_uid)


def negotiate(accept: str, instances: list[Instance], single: bool) -> Answer:
    """How to send instances as PS3.18 §8.7.3 asks: the first media range, by preference,
    they can all be given in (transcoded where asked); a zip holds them as stored. Nothing
    acceptable: 406 with the reason."""
    stored = sorted({i.transfer_syntax_uid for i in instances})
    reasons = []
    for media, params in media_ranges(accept):
        syntax = params.get("transfer-syntax", "")
        if media == "application/zip" and not single:
            if syntax in ("", "*"):
                return Answer("zip", "*")  # as stored, in a zip (PS3.18 §8.7.3.5.3)
            reasons.append(
                "a zip holds the instances as stored: ask for it without a transfer-syntax,"
                ' or for multipart/related; type="application/dicom" in another syntax'
            )
            continue
        if media not in ("*/*", "multipart/*", "multipart/related", "application/dicom"):
            continue
        if media == "multipart/related" and params.get("type", "application/dicom") not in (
            "application/dicom",
            "*/*",
        ):
            continue
        try:
            for each in stored:
                transcoding.target(syntax, each)
        except NotAcceptable as refused:
            reasons.append(refused.message)
            continue
        return Answer("bare" if media == "application/dicom" and single else "multipart", syntax)
    if reasons:
        raise NotAcceptable(reasons[0])
    raise NotAcceptable(
        'WADO-RS returns DICOM instances here: Accept multipart/related; type="application/dicom"'
        " (or application/dicom for one instance, application/zip for a study or series)"
    )


def parts_of(chunks: list[bytes], media_type: str, part_type: str) -> Response:
    """A multipart/related answer of ``chunks``, each of ``part_type``."""
    boundary = uuid.uuid4().hex
    body = bytearray()
    for chunk in chunks:
        body += (
            f"--{boundary}\r\nContent-Type: {part_type}\r\nContent-Length: {len(chunk)}\r\n\r\n"
        ).encode()
        body += chunk + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return Response(
        bytes(body), media_type=f'multipart/related; type="{media_type}"; boundary={boundary}'
    )


#: a frame's media type and the syntaxes frames can be transcoded to in it here, the first
#: the one it means when none is named (PS3.18 Table 8.7.3-2)
FRAME_SYNTAXES = {
    "image/jpeg": (
        "1.2.840.10008.1.2.4.50",  # baseline: lossy, 8-bit pixels only
        "1.2.840.10008.1.2.4.57",
        "1.2.840.10008.1.2.4.70",
    ),
    "image/jls": ("1.2.840.10008.1.2.4.80",),
    "image/jp2": ("1.2.840.10008.1.2.4.90",),
    "image/dicom-rle": ("1.2.840.10008.1.2.5",),
}


def frames_wanted(accept: str, stored_type: str, stored_syntax: str) -> str:
    """What frames go as: 'stored', 'decoded' (native pixels, application/octet-stream,
    as when no media type is named) or the UID of a syntax to transcode the instance to.
    Anything else is 406 with the reason."""
    for media, params in media_ranges(accept):
        kind = (
            params.get("type", "application/octet-stream")
            if media == "multipart/related"
            else media
        )
        syntax = params.get("transfer-syntax", "")
        if media == "multipart/related" and kind == "*/*" and syntax in ("", "*"):
            return "stored"  # any type of part: the frames as they are
        if kind in ("*/*", "multipart/*", "application/octet-stream") and syntax in (
            "",
            "*",
            pixels.UNCOMPRESSED,
        ):
            return "stored" if stored_syntax == pixels.UNCOMPRESSED else "decoded"
        if kind == stored_type and syntax in ("", "*", stored_syntax):
            return "stored"
        offered = FRAME_SYNTAXES.get(kind, ())
        wanted = syntax or (offered[0] if offered else "")
        if wanted in offered:
            transcoding.target(wanted, stored_syntax)  # lossy to lossless: 406, with why
            return wanted
    kinds = ", ".join(FRAME_SYNTAXES)
    raise NotAcceptable(
        f"frames of this instance are {stored_type} (transfer syntax {stored_syntax}),"
        f" application/octet-stream decoded, or transcoded to {kinds}"
    )

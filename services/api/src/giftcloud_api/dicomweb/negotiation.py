"""What a WADO-RS answer is made of (PS3.18 §8.7): the media type the Accept header asks
for among those it can be given, multipart/related bodies, frames in the syntax asked."""

import uuid
from collections.abc import AsyncIterator

from fastapi.responses import Response, StreamingResponse
from giftcloud_core.errors import NotAcceptable

from giftcloud_api.catalogue.service import CatalogueService
from giftcloud_api.dicomweb import rendering as pixels
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


def negotiate(accept: str, instances: list[Instance], single: bool) -> str:
    """How to send instances as PS3.18 §8.7.3 asks: 'multipart', 'bare' (one instance,
    ``Accept: application/dicom``) or 'zip' (a study or series, ``Accept: application/zip``). They go as stored: a transfer syntax other than each
    one's own (or ``*``) cannot be met (406, with the reason)."""
    stored = sorted({i.transfer_syntax_uid for i in instances if i.transfer_syntax_uid})
    asked = []
    for media, params in media_ranges(accept):
        if media == "application/zip" and not single:
            return "zip"  # the instances as stored, in a zip (PS3.18 §8.7.3.5.3)
        if media not in ("*/*", "multipart/*", "multipart/related", "application/dicom"):
            continue
        if media == "multipart/related" and params.get("type", "application/dicom") not in (
            "application/dicom",
            "*/*",
        ):
            continue
        syntax = params.get("transfer-syntax", "*")
        asked.append(syntax)
        if syntax != "*" and stored != [syntax]:
            continue
        return "bare" if media == "application/dicom" and single else "multipart"
    if asked:
        raise NotAcceptable(
            f"instances are returned as stored (transfer syntax {', '.join(stored) or 'unknown'};"
            f" ask for transfer-syntax=* or that); transcoding to {', '.join(asked)} is not offered"
        )
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


def frames_wanted(accept: str, stored_type: str, stored_syntax: str) -> str:
    """'stored' or 'decoded': what the Accept header of a frames request can be met with.
    Frames go as stored; a client asking for application/octet-stream of a compressed
    instance gets them decoded. Anything else is 406 with the reason."""
    for media, params in media_ranges(accept):
        kind = (
            params.get("type", "application/octet-stream")
            if media == "multipart/related"
            else media
        )
        syntax = params.get("transfer-syntax", "*")
        if kind in ("*/*", "multipart/*"):
            return "stored"
        if kind == stored_type and syntax in ("*", stored_syntax):
            return "stored"
        if kind == "application/octet-stream" and syntax in ("*", pixels.UNCOMPRESSED):
            return "decoded"
    raise NotAcceptable(
        f"frames of this instance are {stored_type} (transfer syntax {stored_syntax}),"
        " or application/octet-stream decoded"
    )


async def multipart(instances: list[Instance], service: CatalogueService) -> StreamingResponse:
    boundary = uuid.uuid4().hex

    async def parts() -> AsyncIterator[bytes]:
        for instance in instances:
            data = await service.file(instance)
            yield (
                f"--{boundary}\r\nContent-Type: application/dicom\r\n"
                f"Content-Length: {len(data)}\r\n\r\n"
            ).encode()
            yield data
            yield b"\r\n"
        yield f"--{boundary}--\r\n".encode()

    return StreamingResponse(
        parts(), media_type=f'multipart/related; type="application/dicom"; boundary={boundary}'
    )

"""A STOW-RS request's body as it arrives: its declared and actual length, a stall or a
trickle (408), the uploads one caller has under way (429), and its parts into the upload."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import Request
from giftcloud_core.errors import (
    BadRequest,
    GiftcloudError,
    PayloadTooLarge,
    RequestTimeout,
    TooManyRequests,
    UnsupportedMediaType,
)
from giftcloud_core.settings import Settings
from giftcloud_core.tokens import Principal
from giftcloud_dicom.instance import CANNOT_UNDERSTAND, TOO_LARGE
from giftcloud_dicom.multipart import MultipartError, PartReader
from starlette.requests import ClientDisconnect

from giftcloud_ingest.receiving.uploads import UploadSession


def check_declared_length(request: Request, limit: int) -> None:
    """413 at once for a body that says it is larger than ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the request is {declared} bytes; the limit is {limit}")


async def body_chunks(
    request: Request, limit: int, idle_seconds: float, min_rate: float = 0
) -> AsyncIterator[bytes]:
    """The request body as it arrives: 413 past ``limit`` bytes, 408 when it stalls (nothing
    for ``idle_seconds``) or, after its first ``idle_seconds``, averages under ``min_rate``
    bytes a second."""
    stream = request.stream().__aiter__()
    received = 0
    loop = asyncio.get_running_loop()
    start = loop.time()
    while True:
        # the moment what arrived so far falls under the rate
        slow_at = start + idle_seconds + received / min_rate if min_rate else float("inf")
        now = loop.time()
        rate_bound = slow_at - now < idle_seconds  # the rate, not the idle timeout, ends the wait
        wait = max(0.0, min(idle_seconds, slow_at - now))
        try:
            chunk = await asyncio.wait_for(stream.__anext__(), wait)
        except StopAsyncIteration:
            return
        except TimeoutError:
            if rate_bound:
                raise RequestTimeout(
                    f"the request body is too slow: {received} bytes in"
                    f" {loop.time() - start:.0f} s (at least {min_rate:g} bytes a second)"
                ) from None
            raise RequestTimeout(
                f"the request body stalled: nothing arrived for {idle_seconds:g} s"
                f" after {received} bytes"
            ) from None
        except ClientDisconnect:
            raise BadRequest(f"the client went away after {received} bytes") from None
        received += len(chunk)
        if received > limit:
            raise PayloadTooLarge(f"the request passed the limit of {limit} bytes")
        yield chunk


class UploadsUnderWay:
    """STOW-RS requests under way per caller (in this process): one more than the limit is
    refused at once (429), before any of its body is read."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._held: dict[str, int] = {}

    @contextlib.asynccontextmanager
    async def __call__(self, caller: Principal) -> AsyncIterator[None]:
        who = caller.name
        if self._held.get(who, 0) >= self.limit:
            raise TooManyRequests(
                f"{who} has {self.limit} uploads under way already; send this one when one"
                " of them has finished"
            )
        self._held[who] = self._held.get(who, 0) + 1
        try:
            yield
        finally:
            self._held[who] -= 1
            if not self._held[who]:
                del self._held[who]


async def receive_parts(
    request: Request, upload: UploadSession, reader: PartReader, settings: Settings
) -> None:
    """Stream the body into the upload, part by part."""
    try:
        await _feed(request, upload, reader, settings)
    except MultipartError as exc:
        raise http_error(exc) from None


def http_error(exc: MultipartError) -> GiftcloudError:
    """A body's problem as the HTTP answer that says it."""
    kinds: dict[int, type[GiftcloudError]] = {413: PayloadTooLarge, 415: UnsupportedMediaType}
    return kinds.get(exc.status, BadRequest)(exc.message)


async def _feed(
    request: Request, upload: UploadSession, reader: PartReader, settings: Settings
) -> None:
    max_instance = settings.limits.max_instance_bytes
    config = settings.ingest
    async for chunk in body_chunks(
        request,
        config.max_request_bytes,
        config.body_idle_seconds,
        config.body_min_bytes_per_second,
    ):
        for part in reader.feed(chunk):
            if part.too_large:
                upload.refuse(
                    TOO_LARGE,
                    f"the instance is {part.size} bytes; the limit for one instance is"
                    f" {max_instance} (GIFTCLOUD_LIMITS__MAX_INSTANCE_BYTES)",
                )
            elif part.content_type != "application/dicom":
                upload.refuse(
                    CANNOT_UNDERSTAND,
                    f"a part of type {part.content_type[:64]} was sent; STOW-RS here takes"
                    " application/dicom parts",
                )
            else:
                await upload.add(part.body)
    reader.close()

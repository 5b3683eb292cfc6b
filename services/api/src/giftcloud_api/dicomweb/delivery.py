"""Archived instances on their way out of WADO-RS: as stored, or transcoded (through the
transcoding cache) into the syntax the client asked for."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

from fastapi.responses import StreamingResponse

from giftcloud_api.catalogue.service import CatalogueService
from giftcloud_api.dicomweb.negotiation import Answer
from giftcloud_api.dicomweb.transcoding import TranscodeCache, transcode
from giftcloud_api.models import Instance


class Delivery:
    def __init__(self, service: CatalogueService) -> None:
        self.service = service
        settings = service.settings.api
        self.cache = TranscodeCache(settings.transcode_cache_dir, settings.transcode_cache_bytes)

    async def file(self, instance: Instance, syntax: str | None) -> bytes:
        """The instance's file in ``syntax`` (None: as stored)."""
        if syntax is None:
            return await self.service.file(instance)
        stored_as = f"{instance.object_key}|{instance.sha256}"
        cached = await asyncio.to_thread(self.cache.get, stored_as, syntax)
        if cached is not None:
            return cached
        stored = await self.service.file(instance)
        ceiling = self.service.settings.limits.inflated_ceiling
        data = await asyncio.to_thread(transcode, stored, syntax, ceiling)
        await asyncio.to_thread(self.cache.put, stored_as, syntax, data)
        return data

    async def prepared(
        self, instances: list[Instance], answer: Answer
    ) -> list[tuple[Instance, str | None]]:
        """Each instance and the syntax it goes in, every one to be transcoded done before
        the answer starts (into the cache): one that cannot be is a 406 with its reason,
        never a multipart cut short."""
        plan = [(instance, answer.target(instance)) for instance in instances]
        for instance, syntax in plan:
            if syntax is not None:
                await self.file(instance, syntax)
        return plan

    async def multipart(self, plan: list[tuple[Instance, str | None]]) -> StreamingResponse:
        boundary = uuid.uuid4().hex

        async def parts() -> AsyncIterator[bytes]:
            for instance, syntax in plan:
                data = await self.file(instance, syntax)
                sent = syntax or instance.transfer_syntax_uid
                kind = f"application/dicom; transfer-syntax={sent}" if sent else "application/dicom"
                yield (
                    f"--{boundary}\r\nContent-Type: {kind}\r\nContent-Length: {len(data)}\r\n\r\n"
                ).encode()
                yield data
                yield b"\r\n"
            yield f"--{boundary}--\r\n".encode()

        return StreamingResponse(
            parts(), media_type=f'multipart/related; type="application/dicom"; boundary={boundary}'
        )

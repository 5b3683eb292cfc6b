"""What ingest leaves for anonymise: files in one bundle in ``incoming``, and its event."""

import hashlib

from giftcloud_core.app import Runtime
from giftcloud_core.bundle import pack
from giftcloud_core.events import InstancesReceived, ReceivedPart


def received_event(project: str, bundle_key: str, files: dict[str, bytes]) -> InstancesReceived:
    return InstancesReceived(
        project=project,
        correlation_id="u1",
        object_key=bundle_key,
        parts=tuple(
            ReceivedPart(name=name, sha256=hashlib.sha256(data).hexdigest(), size=len(data))
            for name, data in files.items()
        ),
        source="stow",
    )


async def receive(runtime: Runtime, project: str, files: dict[str, bytes]) -> InstancesReceived:
    """Store ``files`` (part name -> bytes) as one bundle named after the first part, announce
    it, and return the event."""
    bundle_key = next(iter(files)).removesuffix(".dcm") + ".bundle"
    await runtime.store.put(
        runtime.settings.storage.buckets.incoming, bundle_key, pack(list(files.values()))
    )
    event = received_event(project, bundle_key, files)
    await runtime.bus.publish(event)
    return event

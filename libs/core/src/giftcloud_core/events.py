"""Versioned event contracts between services.

An event's ``type`` is its routing key and carries its version. Events carry
object keys, never file bytes. Additive changes keep the version; a breaking
change is a new class published beside the old one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from giftcloud_core.clock import now as _now


class Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    type: str
    event_id: UUID = Field(default_factory=uuid4)
    occurred_at: datetime = Field(default_factory=_now)
    #: the upload or batch this event belongs to
    correlation_id: str
    project: str

    def payload_bytes(self) -> int:
        """Bytes of instances its consumer holds in memory while it handles it: the bus
        bounds the sum over the handlers under way (``BusSettings.memory_budget_bytes``)."""
        return 0


class ReceivedPart(BaseModel):
    """One instance of a received bundle."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    #: the instance's name in its upload (``{project}/{upload}/{index}.dcm``): outcomes, the
    #: quarantine and the de-identification log know it by this name
    name: str
    sha256: str
    size: int
    #: what a deflated instance inflates to (0: not deflated); readers hold this much
    inflated_size: int = 0


class InstancesReceived(Event):
    """Instances accepted by ingest wait, identifiable and encrypted, in one ``incoming``
    object: a bundle (``giftcloud_core.bundle``) holding ``parts`` in this order. One object
    and one message for many instances keep the cost per instance down."""

    type: Literal["instances.received.v1"] = "instances.received.v1"
    object_key: str
    parts: tuple[ReceivedPart, ...]
    #: ``release``: an owner released it from quarantine, to be processed again
    source: Literal["stow", "upload", "dimse", "pacs", "gateway", "release"]

    def payload_bytes(self) -> int:
        return sum(max(part.size, part.inflated_size) for part in self.parts)


class DeidentifiedPart(BaseModel):
    """One instance of a de-identified bundle."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    #: the received part it was made from: ties outcomes back to what was uploaded
    received_key: str
    sha256: str
    size: int
    subject: str
    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str


class InstancesDeidentified(Event):
    """Instances were de-identified; they wait in one ``outgoing`` bundle, in this order, for
    archive to lay them out and announce them."""

    type: Literal["instances.deidentified.v1"] = "instances.deidentified.v1"
    object_key: str
    instances: tuple[DeidentifiedPart, ...]

    def payload_bytes(self) -> int:
        return sum(part.size for part in self.instances)


class InstanceRejected(Event):
    """De-identification refused an instance; it waits for review in ``quarantine``."""

    type: Literal["instance.rejected.v1"] = "instance.rejected.v1"
    object_key: str
    reason: str


class QuarantineCleared(Event):
    """An owner released instances from quarantine (to be processed again under the rules of
    now: each ends archived or rejected anew) or deleted them for good."""

    type: Literal["quarantine.cleared.v1"] = "quarantine.cleared.v1"
    object_keys: tuple[str, ...]
    how: Literal["released", "deleted"]
    #: who cleared them
    by: str = ""


class ArchivedInstance(BaseModel):
    """One instance in the archive, with what the catalogue lists of it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    object_key: str
    received_key: str = ""
    #: where the DICOM JSON was kept beside the instance, before it moved into ``attributes``
    metadata_key: str = ""
    sha256: str
    size: int
    subject: str
    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    modality: str = ""
    study_date: str = ""
    study_description: str = ""
    series_description: str = ""
    series_number: int | None = None
    instance_number: int | None = None
    transfer_syntax_uid: str = ""
    #: the instance's DICOM JSON, bulk data as BulkDataURIs: the catalogue keeps it
    attributes: dict[str, Any] = Field(default_factory=dict)
    #: the archive held it already (sent before: the first copy is kept)
    already: bool = False


class InstancesArchived(Event):
    """De-identified instances are in the archive; their DICOM JSON comes with them."""

    type: Literal["instances.archived.v1"] = "instances.archived.v1"
    instances: tuple[ArchivedInstance, ...]


class CataloguedInstance(BaseModel):
    """One instance the catalogue recorded, named as it was received and as it is now."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    received_key: str = ""
    study_uid: str
    series_uid: str
    sop_uid: str
    #: the archive held it already (sent before): not a new instance of the project
    already: bool = False


class InstancesCatalogued(Event):
    """Archived instances the catalogue now holds (QIDO-RS finds them, WADO-RS serves
    them): what an upload calls archived. One the catalogue could not record is an
    ``instance.rejected`` instead."""

    type: Literal["instances.catalogued.v1"] = "instances.catalogued.v1"
    instances: tuple[CataloguedInstance, ...]


class ProjectCreated(Event):
    """A project exists; services that route by project learn it from here."""

    type: Literal["project.created.v1"] = "project.created.v1"
    title: str = ""


class ProjectUpdated(Event):
    """A project's state that other services enforce, whole: its title and the networks its
    data may be reached from (empty: anywhere). Consumers keep the latest; auth sends every
    project's at start, so a consumer whose database was rebuilt learns them again."""

    type: Literal["project.updated.v1"] = "project.updated.v1"
    title: str = ""
    networks: tuple[str, ...] = ()


class ProfileChanged(Event):
    """A project's de-identification choices, whole, as its owners made them (anonymise owns
    them): the profile options (None: the server's file or the default decides) and the
    kinds of image attested to carry no burned-in text. Consumers keep the highest
    ``version``; anonymise sends every project's at start."""

    type: Literal["profile.changed.v1"] = "profile.changed.v1"
    version: int
    options: tuple[str, ...] | None = None
    burned_in_attested: tuple[str, ...] = ()

    def choices(self) -> dict[str, list[str]]:
        """As the keys of a profile (:func:`giftcloud_deid.profile.project_profile`)."""
        chosen = {"burned_in_attested": list(self.burned_in_attested)}
        if self.options is not None:
            chosen["options"] = list(self.options)
        return chosen


class ResultArrived(Event):
    """A site pulled a result (a DICOM instance derived at the hub, or a file attached
    there) into its inbox, in ``incoming`` at ``object_key``: anonymise checks that it is
    about a subject the site sent and prepares its re-identified copy."""

    type: Literal["result.arrived.v1"] = "result.arrived.v1"
    #: the inbox's name of it: the instance's SOP Instance UID, or ``file:<id>``
    key: str
    object_key: str
    kind: Literal["instance", "file"]
    #: the subject (pseudonym) the hub filed it under
    subject: str


class ResultMade(Event):
    """A federated job's algorithm made a derived image (a segmentation, say) at this site,
    on its de-identified archive: it is at ``object_key`` in ``incoming`` and goes through
    the results path here — into ingest's inbox, checked and re-identified by anonymise,
    delivered to the hospital only once a reidentifier approves — never to the hub."""

    type: Literal["result.made.v1"] = "result.made.v1"
    #: the instance's SOP Instance UID (the inbox's name of it)
    key: str
    object_key: str
    #: the subject (pseudonym) of the study it derives from, by this site's catalogue
    subject: str
    study_uid: str
    series_uid: str
    #: its SOP Class UID
    name: str
    size: int
    sha256: str


class ResultPrepared(Event):
    """anonymise's answer to :class:`ResultArrived`: ``ready`` (the re-identified copy is at
    ``prepared_key`` in ``incoming``, a rendering at ``rendering_key`` if one was made),
    ``held`` (kept, not deliverable: ``reason``) or ``refused`` (not about a subject this
    site sent: not kept)."""

    type: Literal["result.prepared.v1"] = "result.prepared.v1"
    key: str
    outcome: Literal["ready", "held", "refused"]
    reason: str = ""
    prepared_key: str = ""
    rendering_key: str = ""


class AuditRecorded(Event):
    """Who did (or tried) what, to which project's data, from where, and how it ended.
    api keeps them append-only; ``project`` is empty for what concerns no one project."""

    type: Literal["audit.recorded.v1"] = "audit.recorded.v1"
    #: the user, ``key <id> of <user>`` for a machine credential, or empty when unknown
    actor: str
    #: what was done: ``auth.sign-in``, ``dicomweb.search``, ``ingest.upload`` ...
    action: str
    outcome: Literal["success", "denied", "failure"]
    #: what it was done to: a study/series/instance, a query, an account, a key
    target: str = ""
    #: the client's address
    address: str = ""
    detail: str = ""


EVENT_CLASSES: tuple[type[Event], ...] = (
    InstancesReceived,
    InstancesDeidentified,
    InstanceRejected,
    QuarantineCleared,
    InstancesArchived,
    InstancesCatalogued,
    ProjectCreated,
    ProjectUpdated,
    ProfileChanged,
    ResultArrived,
    ResultMade,
    ResultPrepared,
    AuditRecorded,
)

#: routing key -> event class
EVENT_TYPES: dict[str, type[Event]] = {
    cls.model_fields["type"].default: cls for cls in EVENT_CLASSES
}

#: every consumer queue and the event types bound to it: declared by every
#: service at start, so no event is published before its queue exists
QUEUES: dict[str, tuple[str, ...]] = {
    "ingest.projects": ("project.created.v1", "project.updated.v1"),
    # a project's de-identification choices: what ingest admits on arrival
    "ingest.profiles": ("profile.changed.v1",),
    # archived: into the forwarding outbox; catalogued: what the upload calls archived
    "ingest.outcomes": (
        "instance.rejected.v1",
        "instances.archived.v1",
        "instances.catalogued.v1",
    ),
    "anonymise.instances": ("instances.received.v1",),
    "anonymise.projects": ("project.created.v1", "project.updated.v1"),
    # results pulled from the hub (or made here by a federated job), to be checked and
    # re-identified; and the answer
    "anonymise.results": ("result.arrived.v1",),
    "ingest.results": ("result.prepared.v1", "result.made.v1"),
    "archive.instances": ("instances.deidentified.v1",),
    "api.catalogue": (
        "instances.archived.v1",
        "instance.rejected.v1",  # the admin's list of what waits in quarantine
        "quarantine.cleared.v1",  # ... and what no longer does
        "project.created.v1",
        "project.updated.v1",
    ),
    "api.audit": ("audit.recorded.v1",),
}

_any_event: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])


class UnknownEvent(ValueError):
    """A message whose type no event class describes."""


def parse_event(body: bytes) -> Event:
    """Parse a JSON message body into its event class, by its ``type``."""
    raw = _any_event.validate_json(body)
    cls = EVENT_TYPES.get(str(raw.get("type")))
    if cls is None:
        raise UnknownEvent(f"no event class for type {raw.get('type')!r}")
    return cls.model_validate(raw)


def event_json_schemas() -> dict[str, dict[str, Any]]:
    """JSON schema of every event, keyed by routing key (the committed snapshots)."""
    return {key: cls.model_json_schema() for key, cls in sorted(EVENT_TYPES.items())}

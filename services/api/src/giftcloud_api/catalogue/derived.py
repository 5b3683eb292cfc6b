"""Results: instances derived from the project's images (segmentations, structured reports,
RT structure sets, parametric maps). A result is kept only when every instance it says it
derives from is the project's: one that names none, or names an instance the project does not
hold, is refused with the reason (its object leaves the archive). The links are kept, so a
study can list its results and a result its sources.

A result sent with its sources, or just after them, may reach the catalogue first: it waits
(the message is tried again) before it is refused — half of what the bus's retries allow,
at most ``GRACE_SECONDS``, so the last tries always judge it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from giftcloud_core.bus import Bus
from giftcloud_core.bus.base import backoff_seconds
from giftcloud_core.clock import now
from giftcloud_core.db import Database
from giftcloud_core.events import ArchivedInstance, InstanceRejected, InstancesArchived
from giftcloud_core.settings import BusSettings
from giftcloud_core.storage import ObjectStore
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from giftcloud_api.models import Derivation, Instance

log = logging.getLogger(__name__)

#: SOP classes whose instances are results: segmentations (binary, fractional, label map),
#: parametric maps, RT structure sets; every structured report (PS3.4 B.5)
RESULT_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.66.4": "segmentation",
    "1.2.840.10008.5.1.4.1.1.66.7": "label map segmentation",
    "1.2.840.10008.5.1.4.1.1.30": "parametric map",
    "1.2.840.10008.5.1.4.1.1.481.3": "RT structure set",
}
SR_PREFIX = "1.2.840.10008.5.1.4.1.1.88."

#: the longest a result waits for the instances it derives from to be catalogued
GRACE_SECONDS = 10.0


def grace(settings: BusSettings) -> float:
    """How long a result waits: half the time the bus's retries of one message span, at most
    ``GRACE_SECONDS`` (past it, a retry judges rather than waits)."""
    spanned = sum(
        backoff_seconds(settings.retry_base_seconds, attempt)
        for attempt in range(1, settings.max_retries + 1)
    )
    return min(GRACE_SECONDS, spanned / 2)


#: sequences that name the instances a result derives from (searched at any depth, the
#: per-frame functional groups included)
_SOURCES = frozenset(
    {
        "00081115",  # ReferencedSeriesSequence (SEG, parametric map)
        "00082112",  # SourceImageSequence
        "00089124",  # DerivationImageSequence
        "0040A375",  # CurrentRequestedProcedureEvidenceSequence (SR)
        "30060010",  # ReferencedFrameOfReferenceSequence (RTSTRUCT)
    }
)
_REFERENCED_SOP = "00081155"  # ReferencedSOPInstanceUID


def kind_of(sop_class: str) -> str | None:
    """What kind of result an instance of ``sop_class`` is; None for one that is no result."""
    if sop_class.startswith(SR_PREFIX):
        return "structured report"
    return RESULT_CLASSES.get(sop_class)


def _values(element: Any) -> list[Any]:
    return list(element.get("Value", [])) if isinstance(element, dict) else []


def _referenced(items: list[Any]) -> Iterator[str]:
    """Every ReferencedSOPInstanceUID within ``items``, at any depth."""
    for item in items:
        if not isinstance(item, dict):
            continue
        for tag, element in item.items():
            if tag == _REFERENCED_SOP:
                yield from (str(v) for v in _values(element))
            elif isinstance(element, dict) and element.get("vr") == "SQ":
                yield from _referenced(_values(element))


def sources(attributes: dict[str, Any]) -> set[str]:
    """The SOP Instance UIDs a result's DICOM JSON says it derives from."""
    found: set[str] = set()
    stack = [attributes]
    while stack:
        node = stack.pop()
        for tag, element in node.items():
            if not isinstance(element, dict) or element.get("vr") != "SQ":
                continue
            items = [i for i in _values(element) if isinstance(i, dict)]
            if tag in _SOURCES:
                found.update(_referenced(items))
            else:
                stack.extend(items)
    return found


@dataclass(frozen=True)
class Checked:
    """What the catalogue makes of a result: its sources (held), or why it is refused."""

    instance: ArchivedInstance
    held: dict[str, str]  # source SOP Instance UID -> its series
    missing: set[str]

    @property
    def refusal(self) -> str:
        what = kind_of(self.instance.sop_class_uid) or "result"
        if not self.held and not self.missing:
            return (
                f"a {what} must name the instances it derives from (ReferencedSeriesSequence,"
                " SourceImageSequence or, in a structured report, its evidence): it names none"
            )
        shown = ", ".join(sorted(self.missing)[:3])
        more = f" and {len(self.missing) - 3} more" if len(self.missing) > 3 else ""
        return (
            f"a {what} may only derive from the project's instances: it names"
            f" {len(self.missing)} the project does not hold ({shown}{more}); send it after"
            " the images it was made from are archived"
        )


async def check(
    session: AsyncSession, project: str, results: list[ArchivedInstance], alongside: set[str]
) -> list[Checked]:
    """Each result with the sources the project holds (``alongside``: instances being
    recorded with it count as held) and those it does not."""
    wanted = {r.sop_uid: sources(r.attributes) for r in results}
    every = set().union(*wanted.values()) if wanted else set()
    rows = await session.exec(
        select(Instance.sop_uid, Instance.series_uid).where(
            col(Instance.project) == project, col(Instance.sop_uid).in_(every)
        )
    )
    series_of = dict(rows.all())
    return [
        Checked(
            r,
            {
                s: series_of.get(s, "")
                for s in wanted[r.sop_uid]
                if s in series_of or s in alongside
            },
            {s for s in wanted[r.sop_uid] if s not in series_of and s not in alongside},
        )
        for r in results
    ]


class NotYet(Exception):
    """A result's sources are not catalogued yet: its message is tried again."""


class Results:
    """The catalogue's screen for results: kept with their links, or refused with why."""

    def __init__(
        self, db: Database, store: ObjectStore, archive: str, bus: Bus | None, wait: float
    ) -> None:
        self.db = db
        self.store = store
        self.archive = archive
        self.bus = bus
        #: how long a result waits for its sources (:func:`grace`)
        self.wait = wait

    async def screen(self, event: InstancesArchived) -> tuple[InstancesArchived, list[Checked]]:
        """The event without the results it refuses (each refused: its object out of the
        archive, an ``instance.rejected`` with the reason), and the results it keeps."""
        # a copy sent before ('already') is judged too: its first copy may be refused (and its
        # object removed) by another message at the same time
        results = [i for i in event.instances if kind_of(i.sop_class_uid)]
        if not results:
            return event, []
        alongside = {i.sop_uid for i in event.instances}
        async with self.db.session() as session:
            checked = await check(session, event.project, results, alongside)
        refused = [c for c in checked if c.missing or not c.held]
        waited = (now() - event.occurred_at).total_seconds()
        if any(c.missing for c in refused) and waited < self.wait:
            raise NotYet(f"{len(refused)} result(s) name instances not catalogued yet: tried again")
        gone = {c.instance.sop_uid: c for c in refused}
        for c in refused:  # its object, once, unless it is another's (sent before)
            if not c.instance.already:
                await self.store.delete(self.archive, c.instance.object_key)
        for instance in event.instances:  # every copy sent (a second is 'already'): refused
            if instance.sop_uid in gone:
                await self._refuse(event, instance, gone[instance.sop_uid].refusal)
        kept = tuple(i for i in event.instances if i.sop_uid not in gone)
        return event.model_copy(update={"instances": kept}), [
            c for c in checked if c not in refused
        ]

    async def link(self, project: str, kept: list[Checked]) -> None:
        rows = [
            {
                "project": project,
                "sop_uid": c.instance.sop_uid,
                "source_sop_uid": source,
                "source_series_uid": series,
                "kind": kind_of(c.instance.sop_class_uid) or "result",
            }
            for c in kept
            for source, series in c.held.items()
        ]
        if rows:
            async with self.db.session() as session:
                await session.exec(insert(Derivation).values(rows).on_conflict_do_nothing())

    async def _refuse(
        self, event: InstancesArchived, instance: ArchivedInstance, reason: str
    ) -> None:
        log.warning("refused result %s: %s", instance.sop_uid, reason)
        if self.bus is not None:
            await self.bus.publish(
                InstanceRejected(
                    project=event.project,
                    correlation_id=event.correlation_id,
                    object_key=instance.received_key or instance.sop_uid,
                    reason=reason,
                )
            )

"""Pulling a project's results back from the hub, outbound only: the hub's list of results
since the last pull, each new one fetched (WADO-RS for an instance, the file route for a
file) with the same machine credential as forwarding, checked against its digest, put in
``incoming`` and in the inbox, then announced to anonymise.

At least once, kept once: the inbox has one row per result (a result pulled twice, after a
crash or from an overlapping window, is a no-op), and the pull's cursor moves only after
the rows are written; a result whose announcement was lost (a crash between the row and
the message) is announced again once it has waited :data:`ANNOUNCE_AGAIN` seconds."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta
from typing import Any

import httpx
from giftcloud_core.bus import Bus
from giftcloud_core.clock import now
from giftcloud_core.events import Event, ResultArrived, ResultMade
from giftcloud_dicom.multipart import PartReader, boundary_of
from sqlalchemy import text, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select

from giftcloud_ingest.models import ReturnItem, ReturnProject
from giftcloud_ingest.returns.service import Returns

log = logging.getLogger(__name__)
#: a pull asks from this long before the newest result it saw (late commits at the hub)
OVERLAP = timedelta(minutes=5)
ANNOUNCE_AGAIN = 60.0
#: results asked for in one pull
PAGE = 500
#: the largest result taken from the hub
MAX_RESULT_BYTES = 2 * 1024**3
WADO_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'


class PullError(Exception):
    """The hub could not be asked, or answered what the site cannot take."""


class Puller:
    def __init__(self, returns: Returns, bus: Bus) -> None:
        self.returns = returns
        self.hub = returns.hub
        self.db = returns.db
        self.store = returns.store
        self.incoming = returns.buckets.incoming
        self.bus = bus

    async def round(self, first: bool) -> bool:
        """One pull of every project that pulls (a job's round); False: nothing more now.
        First, what waits to be announced again (results made here need no hub)."""
        await self._announce_again()
        if not self.hub.url:
            return False
        async with self.db.session() as session:
            projects = (
                await session.exec(
                    select(ReturnProject.project).where(col(ReturnProject.enabled).is_(True))
                )
            ).all()
        for project in projects:
            # one ingest pulls a project at a time: the lock lasts the transaction, and goes
            # with the connection of an ingest that dies
            async with self.db.session() as held:
                connection = await held.connection()
                taken = await connection.execute(
                    text("SELECT pg_try_advisory_xact_lock(hashtextextended(:name, 0))"),
                    {"name": f"giftcloud.returns.pull:{project}"},
                )
                row = await held.get(ReturnProject, project)
                if not taken.scalar() or row is None:
                    continue
                try:
                    await self.pull(project, row.since)
                except Exception as exc:  # recorded for the status; the next round tries again
                    log.warning("pulling results of %s from the hub: %s", project, exc)
                    await self._record(project, error=str(exc) or type(exc).__name__)
        return False

    async def pull(self, project: str, since: datetime | None) -> None:
        """The hub's results since the cursor, each new one taken; the cursor moves on."""
        listed = await self._get(
            f"/api/projects/{project}/results",
            params={"limit": str(PAGE), **({"since": since.isoformat()} if since else {})},
        )
        results: list[dict[str, Any]] = listed.json()
        async with self.db.session() as session:
            known = set(
                (
                    await session.exec(
                        select(ReturnItem.key).where(
                            col(ReturnItem.project) == project,
                            col(ReturnItem.key).in_([r["key"] for r in results]),
                        )
                    )
                ).all()
            )
        for result in results:
            if result["key"] not in known:
                await self._take(project, result)
        await self._record(project, since=_next_cursor(since, results))

    async def _take(self, project: str, result: dict[str, Any]) -> None:
        key = str(result["key"])
        if result["kind"] == "file":
            answer = await self._get(f"/api/projects/{project}/files/{key.removeprefix('file:')}")
            data = answer.content
        else:
            answer = await self._get(
                f"/dicomweb/{project}/studies/{result['study_uid']}/series/"
                f"{result['series_uid']}/instances/{key}",
                headers={"Accept": WADO_ACCEPT},
            )
            data = _only_part(answer)
        if hashlib.sha256(data).hexdigest() != result["sha256"]:
            raise PullError(f"result {key}: what the hub sent does not match its digest")
        name = hashlib.sha256(key.encode()).hexdigest()[:32]
        object_key = f"results/{project}/{name}{'.dcm' if result['kind'] == 'instance' else ''}"
        await self.store.put(self.incoming, object_key, data)
        await self._admit(project, {**result, "size": len(data)}, object_key)

    async def take_made(self, event: Event) -> None:
        """A derived image a federated job made at this site (already in ``incoming``): into
        the inbox as a pulled result is, and checked the same way (a redelivery: no-op)."""
        if not isinstance(event, ResultMade):
            return
        fields = ("key", "subject", "study_uid", "series_uid", "name", "size", "sha256")
        made = {name: getattr(event, name) for name in fields}
        await self._admit(event.project, {**made, "kind": "instance"}, event.object_key)

    async def _admit(self, project: str, result: dict[str, Any], object_key: str) -> None:
        """One row in the inbox (kept once), then announced to anonymise."""
        row = {
            "project": project,
            "key": str(result["key"]),
            "kind": result["kind"],
            "subject": result["subject"],
            "study_uid": result["study_uid"],
            "series_uid": result["series_uid"],
            "name": result["name"],
            "size": result["size"],
            "sha256": result["sha256"],
            "object_key": object_key,
            "state": "checking",
            "next_at": now() + timedelta(seconds=ANNOUNCE_AGAIN),
            "created_at": now(),
        }
        async with self.db.session() as session:
            await session.exec(insert(ReturnItem).values(row).on_conflict_do_nothing())
        await self._announce(project, row["key"], object_key, row["kind"], row["subject"])

    async def _announce(
        self, project: str, key: str, object_key: str, kind: str, subject: str
    ) -> None:
        await self.bus.publish(
            ResultArrived(
                project=project,
                correlation_id=f"result:{key}",
                key=key,
                object_key=object_key,
                kind="file" if kind == "file" else "instance",
                subject=subject,
            )
        )

    async def _announce_again(self) -> None:
        """Arrivals still being checked after :data:`ANNOUNCE_AGAIN` seconds (their message
        lost in a crash), each claimed by one ingest and announced again."""
        async with self.db.session() as session:
            stale = (
                await session.exec(
                    update(ReturnItem)
                    .where(col(ReturnItem.state) == "checking", col(ReturnItem.next_at) <= now())
                    .values(next_at=now() + timedelta(seconds=ANNOUNCE_AGAIN))
                    .returning(
                        col(ReturnItem.project),
                        col(ReturnItem.key),
                        col(ReturnItem.object_key),
                        col(ReturnItem.kind),
                        col(ReturnItem.subject),
                    )
                )
            ).all()
        for project, key, object_key, kind, subject in stale:
            await self._announce(project, key, object_key, kind, subject)

    async def _get(
        self, path: str, params: dict[str, str] | None = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        try:
            response = await self.hub.request("GET", path, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise PullError(f"the hub could not be reached: {exc}") from exc
        if response.status_code != 200:
            detail = response.text[:300].replace("\n", " ")
            raise PullError(f"the hub answered {response.status_code} to {path}: {detail}")
        return response

    async def _record(
        self, project: str, since: datetime | None = None, error: str | None = None
    ) -> None:
        values: dict[str, Any]
        if error is not None:
            values = {"last_error": error[:500], "last_error_at": now()}
        else:
            values = {"last_success_at": now(), "since": since}
        async with self.db.session() as session:
            await session.exec(
                update(ReturnProject).where(col(ReturnProject.project) == project).values(**values)
            )


def _next_cursor(since: datetime | None, results: list[dict[str, Any]]) -> datetime | None:
    """Where the next pull starts: from the newest result of a full page (more wait behind
    it), else a little before the newest (a result the hub committed late, with an earlier
    time, is still seen); never back."""
    if not results:
        return since
    newest = max(datetime.fromisoformat(r["at"]) for r in results)
    cursor = newest if len(results) >= PAGE else newest - OVERLAP
    return max(cursor, since) if since is not None else cursor


def _only_part(response: httpx.Response) -> bytes:
    """The one instance of a WADO-RS answer."""
    try:
        reader = PartReader(
            boundary_of(response.headers.get("content-type", "")),
            max_part_bytes=MAX_RESULT_BYTES,
            max_parts=1,
        )
        parts = reader.feed(response.content)
        reader.close()
    except ValueError as exc:
        raise PullError(f"the hub's WADO-RS answer is not one instance: {exc}") from exc
    if len(parts) != 1 or parts[0].too_large:
        raise PullError("the hub's WADO-RS answer is not one instance")
    return parts[0].body

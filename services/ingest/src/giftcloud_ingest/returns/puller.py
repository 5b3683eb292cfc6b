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
from giftcloud_core.events import ResultArrived
from giftcloud_dicom.multipart import PartReader, boundary_of
from sqlalchemy import update
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
        #: projects whose last pull filled a page: the next asks from its newest exactly
        self._full: set[str] = set()

    async def round(self, first: bool) -> bool:
        """One pull of every project that pulls (a job's round); False: nothing more now."""
        if not self.hub.url:
            return False
        async with self.db.session() as session:
            projects = list(
                (
                    await session.exec(
                        select(ReturnProject).where(col(ReturnProject.enabled).is_(True))
                    )
                ).all()
            )
        for project in projects:
            try:
                await self.pull(project)
            except Exception as exc:  # recorded for the status; the next round tries again
                log.warning("pulling results of %s from the hub: %s", project.project, exc)
                await self._record(project.project, error=str(exc) or type(exc).__name__)
        await self._announce_again()
        return False

    async def pull(self, project: ReturnProject) -> None:
        since = project.since
        if since is not None and project.project not in self._full:
            since -= OVERLAP
        listed = await self._get(
            f"/api/projects/{project.project}/results",
            params={"limit": str(PAGE), **({"since": since.isoformat()} if since else {})},
        )
        results: list[dict[str, Any]] = listed.json()
        async with self.db.session() as session:
            known = set(
                (
                    await session.exec(
                        select(ReturnItem.key).where(
                            col(ReturnItem.project) == project.project,
                            col(ReturnItem.key).in_([r["key"] for r in results]),
                        )
                    )
                ).all()
            )
        for result in results:
            if result["key"] not in known:
                await self._take(project.project, result)
        newest = max((datetime.fromisoformat(r["at"]) for r in results), default=None)
        if len(results) >= PAGE:
            self._full.add(project.project)
        else:
            self._full.discard(project.project)
        await self._record(project.project, since=newest)

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
        object_key = f"results/{project}/{hashlib.sha256(key.encode()).hexdigest()[:32]}.dcm"
        await self.store.put(self.incoming, object_key, data)
        row = {
            "project": project,
            "key": key,
            "kind": result["kind"],
            "subject": result["subject"],
            "study_uid": result["study_uid"],
            "series_uid": result["series_uid"],
            "name": result["name"],
            "size": len(data),
            "sha256": result["sha256"],
            "object_key": object_key,
            "state": "checking",
            "next_at": now() + timedelta(seconds=ANNOUNCE_AGAIN),
            "created_at": now(),
        }
        async with self.db.session() as session:
            await session.exec(insert(ReturnItem).values(row).on_conflict_do_nothing())
        await self._announce(project, key, object_key, result["kind"], result["subject"])

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
        async with self.db.session() as session:
            stale = list(
                (
                    await session.exec(
                        select(ReturnItem)
                        .where(
                            col(ReturnItem.state) == "checking", col(ReturnItem.next_at) <= now()
                        )
                        .limit(100)
                    )
                ).all()
            )
            for item in stale:
                await session.exec(
                    update(ReturnItem)
                    .where(col(ReturnItem.project) == item.project, col(ReturnItem.key) == item.key)
                    .values(next_at=now() + timedelta(seconds=ANNOUNCE_AGAIN))
                )
        for item in stale:
            await self._announce(item.project, item.key, item.object_key, item.kind, item.subject)

    async def _get(
        self, path: str, params: dict[str, str] | None = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        try:
            response = await self.hub.http.get(
                f"{self.hub.url}{path}",
                params=params,
                headers={**await self.hub.headers(), **(headers or {})},
            )
        except httpx.HTTPError as exc:
            raise PullError(f"the hub could not be reached: {exc}") from exc
        if response.status_code == 401:
            self.hub.forget_token()
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
            values = {"last_success_at": now()}
            if since is not None:
                values["since"] = since
        async with self.db.session() as session:
            await session.exec(
                update(ReturnProject).where(col(ReturnProject.project) == project).values(**values)
            )


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

"""Site → hub forwarding: each archived (de-identified) instance of a project that forwards
goes to the hub's STOW-RS under the same project name, with the machine credential the hub
issued (an OAuth2 client, or an API key; never a person's password).

It lives in ingest because ingest is the service that talks to the world outside the site
(DICOM peers, the PACS, and now the hub) and already consumes ``instances.archived``: the
event names each instance's object in the archive, which the forwarder reads as anonymise
reads ``incoming`` and archive reads ``outgoing`` -- events carry object keys, never bytes.
Archive stays internal, with no credential to anything outside.

At least once: the outbox row is written before the event is acknowledged and removed only
once the hub has answered that it stored the instance; a crash anywhere means it is sent
again, and the hub keeps one copy per SOP Instance UID, so a resent instance is a no-op.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from giftcloud_core.credentials import http_exchange, split_key
from giftcloud_core.errors import Conflict, NotFound
from giftcloud_core.events import InstancesArchived
from giftcloud_core.metrics import FORWARD_BACKLOG, FORWARDED
from sqlalchemy import delete, func, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select

from giftcloud_ingest.models import ForwardItem, ForwardProject
from giftcloud_ingest.service import IngestService

log = logging.getLogger(__name__)

#: a STOW-RS failure reason that means "try again later" (out of resources)
RETRY_REASONS = {0xA700}
LONGEST_BACKOFF = 600.0
#: how often the backlog gauge is counted afresh
MEASURE_SECONDS = 5.0


def _now() -> datetime:
    return datetime.now(UTC)


def multipart(files: list[bytes]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = bytearray()
    for data in files:
        body += f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        body += data
        body += b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return bytes(body), f'multipart/related; type="application/dicom"; boundary={boundary}'


class Forwarder:
    def __init__(self, service: IngestService) -> None:
        self.service = service
        self.db = service.db
        self.settings = service.settings.forward
        self.hub = self.settings.hub_url.rstrip("/")
        self._token: tuple[str, float] | None = None
        self._http: httpx.AsyncClient | None = None

    @property
    def configured(self) -> bool:
        return bool(self.hub)

    @property
    def has_credential(self) -> bool:
        config = self.settings
        return config.api_key is not None or bool(config.client_id and config.client_secret)

    # --- per project (owners), and the whole picture (admins) ----------------------------

    async def set_enabled(self, project: str, enabled: bool, by: str) -> dict[str, Any]:
        if enabled and not self.configured:
            raise Conflict(
                "this deployment has no hub to forward to: set GIFTCLOUD_FORWARD__HUB_URL and"
                " the hub's machine credential (GIFTCLOUD_FORWARD__CLIENT_ID and"
                " __CLIENT_SECRET, or __API_KEY)"
            )
        if enabled and not self.has_credential:
            raise Conflict(
                "no machine credential for the hub: set GIFTCLOUD_FORWARD__CLIENT_ID and"
                " __CLIENT_SECRET (an OAuth2 client the hub issued), or __API_KEY"
            )
        statement = insert(ForwardProject).values(
            project=project, enabled=enabled, updated_by=by, updated_at=_now()
        )
        async with self.db.session() as session:
            await session.exec(
                statement.on_conflict_do_update(
                    index_elements=["project"],
                    set_={"enabled": enabled, "updated_by": by, "updated_at": _now()},
                )
            )
        return await self.project_status(project)

    async def retry_failed(self, project: str) -> dict[str, Any]:
        async with self.db.session() as session:
            await session.exec(
                update(ForwardItem)
                .where(col(ForwardItem.project) == project, col(ForwardItem.state) == "failed")
                .values(state="pending", attempts=0, next_at=_now())
            )
        return await self.project_status(project)

    async def project_status(self, project: str) -> dict[str, Any]:
        async with self.db.session() as session:
            row = await session.get(ForwardProject, project)
            counts = dict(
                (
                    await session.exec(
                        select(ForwardItem.state, func.count())
                        .where(ForwardItem.project == project)
                        .group_by(col(ForwardItem.state))
                    )
                ).all()
            )
            failed = (
                await session.exec(
                    select(ForwardItem.sop_uid, ForwardItem.last_error)
                    .where(ForwardItem.project == project, ForwardItem.state == "failed")
                    .limit(20)
                )
            ).all()
        return {
            "project": project,
            "hub": self.hub or None,
            "enabled": bool(row and row.enabled),
            "backlog": int(counts.get("pending", 0)),
            "failed": int(counts.get("failed", 0)),
            "failures": [{"sop_uid": sop, "reason": why} for sop, why in failed],
            "last_success_at": _iso(row.last_success_at if row else None),
            "last_error": row.last_error if row else "",
            "last_error_at": _iso(row.last_error_at if row else None),
        }

    async def status(self) -> dict[str, Any]:
        async with self.db.session() as session:
            projects = list((await session.exec(select(ForwardProject.project))).all())
        return {
            "hub": self.hub or None,
            "projects": [await self.project_status(p) for p in sorted(projects)],
        }

    # --- the outbox -------------------------------------------------------------------

    async def enqueue(self, event: InstancesArchived) -> None:
        """Before the event is acknowledged: its instances into the outbox, if the project
        forwards."""
        if not self.configured or not event.instances:
            return
        async with self.db.session() as session:
            row = await session.get(ForwardProject, event.project)
            if row is None or not row.enabled:
                return
            await session.exec(
                insert(ForwardItem)
                .values(
                    [
                        {
                            "project": event.project,
                            "sop_uid": i.sop_uid,
                            "object_key": i.object_key,
                            "state": "pending",
                            "attempts": 0,
                            "next_at": _now(),
                            "last_error": "",
                            "created_at": _now(),
                        }
                        for i in event.instances
                    ]
                )
                .on_conflict_do_nothing()
            )

    async def keep_forwarding(self) -> None:
        if not self.configured:
            return
        self._http = httpx.AsyncClient(timeout=self.settings.timeout_seconds)
        measured, busy = 0.0, False
        try:
            while True:
                try:
                    worked = await self.forward_once()
                except Exception:
                    log.exception("forwarding failed; trying again")
                    worked = False
                # the backlog is counted over the whole outbox: every few seconds while busy
                # (not every batch), and as soon as the forwarder runs out of work
                drained, busy = busy and not worked, worked
                if drained or time.monotonic() - measured >= MEASURE_SECONDS:
                    measured = time.monotonic()
                    try:
                        await self._measure()
                    except Exception:
                        log.exception("could not measure the forwarding backlog")
                if not worked:
                    await asyncio.sleep(self.settings.poll_seconds)
        finally:
            await self._http.aclose()

    async def _measure(self) -> None:
        async with self.db.session() as session:
            rows = (
                await session.exec(
                    select(ForwardItem.project, ForwardItem.state, func.count()).group_by(
                        col(ForwardItem.project), col(ForwardItem.state)
                    )
                )
            ).all()
            projects = (await session.exec(select(ForwardProject.project))).all()
        for project in projects:
            for state in ("pending", "failed"):
                FORWARD_BACKLOG.labels(project, state).set(0)
        for project, state, count in rows:
            FORWARD_BACKLOG.labels(project, state).set(count)

    async def forward_once(self) -> bool:
        """Claim a batch of one project's due instances (skipping those another forwarder
        holds), send it, settle each. False when nothing was due."""
        now = _now()
        lease = now + timedelta(seconds=self.settings.timeout_seconds * 2)
        async with self.db.session() as session:
            first = (
                await session.exec(
                    select(ForwardItem.project)
                    .join(ForwardProject, col(ForwardProject.project) == col(ForwardItem.project))
                    .where(
                        col(ForwardItem.state) == "pending",
                        col(ForwardItem.next_at) <= now,
                        col(ForwardProject.enabled).is_(True),
                    )
                    .order_by(col(ForwardItem.next_at))
                    .limit(1)
                )
            ).first()
            if first is None:
                return False
            items = list(
                (
                    await session.exec(
                        select(ForwardItem)
                        .where(
                            ForwardItem.project == first,
                            ForwardItem.state == "pending",
                            col(ForwardItem.next_at) <= now,
                        )
                        .order_by(col(ForwardItem.next_at))
                        .limit(self.settings.batch)
                        .with_for_update(skip_locked=True)
                    )
                ).all()
            )
            for item in items:
                item.next_at = lease
                session.add(item)
        if items:
            await self._send(str(first), items)
        return bool(items)

    async def _send(self, project: str, items: list[ForwardItem]) -> None:
        archive = self.service.settings.storage.buckets.archive
        read = await asyncio.gather(
            *(self.service.store.get(archive, item.object_key) for item in items),
            return_exceptions=True,
        )
        files: list[bytes] = []
        sending: list[ForwardItem] = []
        for item, data in zip(items, read, strict=True):
            if isinstance(data, BaseException):
                await self._settle(project, [item], f"cannot read it from the archive: {data}")
            else:
                files.append(data)
                sending.append(item)
        if not sending:
            return
        try:
            token = await self._bearer()
            body, content_type = multipart(files)
            assert self._http is not None
            response = await self._http.post(
                f"{self.hub}/dicomweb/{project}/studies",
                content=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": content_type},
            )
        except Exception as exc:
            await self._settle(project, sending, f"the hub could not be reached: {exc}")
            return
        if response.status_code == 401:
            self._token = None
        if response.status_code in (200, 202, 400, 409) and _is_stow(response):
            await self._settle_answer(project, sending, response.json())
        else:
            detail = response.text[:300].replace("\n", " ")
            await self._settle(
                project, sending, f"the hub answered {response.status_code}: {detail}"
            )

    async def _settle_answer(
        self, project: str, items: list[ForwardItem], answer: dict[str, Any]
    ) -> None:
        failures: dict[str, tuple[int, str]] = {}
        for entry in answer.get("00081198", {}).get("Value", []):
            sop = _first(entry.get("00081155"))
            reason = _first(entry.get("00081197"))
            why = _first(entry.get("00091001")) or _first(entry.get("00000902"))
            failures[str(sop)] = (int(reason or 0), str(why))
        done = [i for i in items if i.sop_uid not in failures]
        retry = [i for i in items if failures.get(i.sop_uid, (0, ""))[0] in RETRY_REASONS]
        refused = [
            i
            for i in items
            if i.sop_uid in failures and failures[i.sop_uid][0] not in RETRY_REASONS
        ]
        if done:
            async with self.db.session() as session:
                await session.exec(
                    delete(ForwardItem).where(
                        col(ForwardItem.project) == project,
                        col(ForwardItem.sop_uid).in_([i.sop_uid for i in done]),
                    )
                )
                await session.exec(
                    update(ForwardProject)
                    .where(col(ForwardProject.project) == project)
                    .values(last_success_at=_now())
                )
            FORWARDED.labels("stored").inc(len(done))
        for item in refused:
            code, why = failures[item.sop_uid]
            await self._settle(
                project, [item], f"the hub refused it (0x{code:04X}): {why}", final=True
            )
        if retry:
            await self._settle(project, retry, "the hub is out of resources; trying again")

    async def _settle(
        self, project: str, items: list[ForwardItem], error: str, final: bool = False
    ) -> None:
        """A failed try: back off, or set aside (refused, or out of tries)."""
        log.warning("forwarding %d instance(s) of %s: %s", len(items), project, error)
        async with self.db.session() as session:
            for item in items:
                attempts = item.attempts + 1
                give_up = final or attempts >= self.settings.max_attempts
                delay = min(LONGEST_BACKOFF, self.settings.retry_base_seconds * 2**item.attempts)
                await session.exec(
                    update(ForwardItem)
                    .where(
                        col(ForwardItem.project) == project,
                        col(ForwardItem.sop_uid) == item.sop_uid,
                    )
                    .values(
                        attempts=attempts,
                        state="failed" if give_up else "pending",
                        next_at=_now() + timedelta(seconds=delay),
                        last_error=error[:500],
                    )
                )
            await session.exec(
                update(ForwardProject)
                .where(col(ForwardProject.project) == project)
                .values(last_error=error[:500], last_error_at=_now())
            )
        FORWARDED.labels("failed" if final else "retried").inc(len(items))

    async def _bearer(self) -> str:
        """The hub's access token for the machine credential, cached until 30 s before it
        expires (an API key is exchanged the same way, as the hub's services do)."""
        if self._token is not None and self._token[1] > time.monotonic():
            return self._token[0]
        config = self.settings
        if config.api_key is not None:
            client_id, secret = split_key(config.api_key.get_secret_value())
        elif config.client_id and config.client_secret is not None:
            client_id, secret = config.client_id, config.client_secret.get_secret_value()
        else:
            raise NotFound(
                "no machine credential for the hub: set GIFTCLOUD_FORWARD__CLIENT_ID and"
                " __CLIENT_SECRET, or __API_KEY"
            )
        token, lifetime = await http_exchange(f"{self.hub}/auth/token", self._http)(
            client_id, secret
        )
        self._token = (token, time.monotonic() + max(0, lifetime - 30))
        return token


def _is_stow(response: httpx.Response) -> bool:
    return str(response.headers.get("content-type", "")).startswith("application/dicom+json")


def _first(element: Any) -> Any:
    if not isinstance(element, dict):
        return None
    values = element.get("Value") or [None]
    return values[0]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None

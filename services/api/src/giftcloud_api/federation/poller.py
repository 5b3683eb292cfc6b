"""The site calling its hub (outbound only): say how it is, take the questions for it
(held open by the hub while there are none), answer each under the site's policy, and send
again what the hub did not take. Off until the site's admin turns federation on."""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

import httpx
from giftcloud_core.hub import HubClient
from giftcloud_core.settings import FederationSettings
from pydantic import ValidationError

from giftcloud_api.federation.schemas import Heartbeat, SiteAnswer, Task
from giftcloud_api.federation.site import SiteFederation

log = logging.getLogger(__name__)

#: a site says how it is at least this often
HEARTBEAT_SECONDS = 30.0


def read_task(asked: dict[str, Any]) -> Task | SiteAnswer:
    """The hub's question, or this site's refusal of one it cannot read (a hub newer than
    the site): refused with the reason rather than failing every call on it."""
    try:
        return Task.model_validate(asked)
    except ValidationError as exc:
        reason = exc.errors()[0]["msg"] if exc.errors() else str(exc)
        return SiteAnswer(state="refused", reason=f"this site cannot read the question: {reason}")


class Work(Protocol):
    """Other work a site takes on the same calls (jobs): the task kinds it takes, what the
    heartbeat says of it, and what it has still to tell the hub."""

    kinds: frozenset[str]

    async def take(self, task: Task) -> None: ...

    async def described(self) -> dict[str, Any]: ...

    async def send_pending(self) -> None: ...


class SitePoller:
    def __init__(
        self,
        site: SiteFederation,
        hub: HubClient,
        settings: FederationSettings,
        version: str,
        work: Work | None = None,
    ) -> None:
        self.site = site
        self.hub = hub
        self.settings = settings
        self.version = version
        self.work = work
        self._said: Heartbeat | None = None
        self._said_at = 0.0

    async def round(self, first: bool) -> bool:
        """One call to the hub; True to call again at once (the hub held it open)."""
        if not self.hub.url or not self.hub.has_credential:
            return False
        policy = await self.site.policy()
        if not policy.enabled:
            if self._said is not None and self._said.enabled:  # tell the hub it is off
                await self._heartbeat(Heartbeat(enabled=False, version=self.version))
            return False
        beat = Heartbeat(
            enabled=True,
            version=self.version,
            policy={"k": policy.k, "noise": policy.noise, "budget": policy.budget}
            | (await self.work.described() if self.work else {}),
        )
        if beat != self._said or time.monotonic() - self._said_at > HEARTBEAT_SECONDS:
            await self._heartbeat(beat)
        for held in await self.site.undelivered():
            await self._send(held.question, SiteAnswer.model_validate(held.released))
        if self.work:
            await self.work.send_pending()
        wait = self.settings.wait_seconds
        answer = await self._call(
            "GET", "/api/federation/tasks", params={"wait": wait}, timeout=wait + 30
        )
        for asked in answer.json():
            task = read_task(asked)
            if isinstance(task, SiteAnswer):
                await self._send(str(asked.get("id", "")), task)
            elif self.work and task.kind in self.work.kinds:
                await self.work.take(task)
            else:
                await self._send(task.id, await self.site.answer(task))
        if self.work:
            await self.work.send_pending()
        return True

    async def _heartbeat(self, beat: Heartbeat) -> None:
        await self._call("POST", "/api/federation/heartbeat", json=beat.model_dump(mode="json"))
        self._said, self._said_at = beat, time.monotonic()

    async def _send(self, question: str, answer: SiteAnswer) -> None:
        response = await self._call(
            "PUT",
            f"/api/federation/tasks/{question}",
            json=answer.model_dump(mode="json"),
            ok=(409,),
        )
        if response.status_code == 409:  # the hub stopped waiting: kept here, not sent again
            log.warning("the hub did not take the answer to %s: %s", question, response.text)
        await self.site.delivered(question)

    async def _call(
        self, method: str, path: str, *, ok: tuple[int, ...] = (), **kwargs: Any
    ) -> httpx.Response:
        response = await self.hub.request(method, path, **kwargs)
        if response.status_code >= 400 and response.status_code not in ok:
            detail = response.text[:300].replace("\n", " ")
            raise RuntimeError(
                f"the hub answered {method} {path} with {response.status_code}: {detail}"
            )
        return response

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from functools import lru_cache
from pathlib import Path

from giftcloud_core.batching import Batcher
from giftcloud_core.bundle import fetch, pack
from giftcloud_core.bus import Bus
from giftcloud_core.db import Database
from giftcloud_core.events import (
    DeidentifiedPart,
    Event,
    InstanceRejected,
    InstancesDeidentified,
    InstancesReceived,
    ProjectCreated,
    ProjectUpdated,
    ReceivedPart,
)
from giftcloud_core.metrics import INSTANCES
from giftcloud_core.settings import Settings
from giftcloud_core.storage import ObjectStore
from giftcloud_deid import (
    DEFAULT_NAMESPACE,
    DeidentifiedInstance,
    Deidentifier,
    NamespaceError,
    PatientNamespace,
    Profile,
    ProjectKeys,
    Rejected,
    audit,
)
from giftcloud_deid.conformance import summarise
from giftcloud_deid.vault import VaultOpener, VaultSealer
from giftcloud_deid.verify import Identity
from giftcloud_dicom.part10 import summary
from sqlalchemy.dialects.postgresql import insert

from giftcloud_anonymise.models import Deidentification, KnownProject
from giftcloud_anonymise.profiles.service import ProjectProfiles
from giftcloud_anonymise.vault import Vault

log = logging.getLogger(__name__)


Outcome = DeidentifiedInstance | Rejected


def _deidentify(deidentifier: Deidentifier, data: bytes) -> Outcome:
    try:
        return deidentifier.deidentify(data)
    except Rejected as exc:
        return exc


def _audit(data: bytes, accepted: Profile, max_inflated: int) -> Outcome:
    """verify mode: what arrives must be de-identified already, by a profile the project
    accepts, and its content must be what that profile leaves; it passes on unchanged."""
    problems = audit(data, accepted=accepted, max_inflated=max_inflated)
    if problems:
        return Rejected("not de-identified as declared: " + summarise(problems))
    facts = summary(data, max_inflated=max_inflated)
    return DeidentifiedInstance(
        data=data,
        subject=facts["subject"],
        study_uid=facts["study"],
        series_uid=facts["series"],
        sop_uid=facts["sop"],
        sop_class_uid=facts["sop_class"],
        transfer_syntax_uid=facts["transfer_syntax"],
        identity=Identity(),
    )


def _namespace(path: Path | None) -> PatientNamespace:
    if path is None:
        return DEFAULT_NAMESPACE
    try:
        return PatientNamespace.load(path)
    except NamespaceError as exc:
        raise RuntimeError(f"GIFTCLOUD_ANONYMISE__NAMESPACE_FILE: {exc}") from exc


def _pem(path: Path) -> bytes:
    if not path.is_file():
        raise RuntimeError(
            f"vault key {path} is not a file: make a key pair with `giftcloud vault-keys DIR`"
        )
    return path.read_bytes()


class AnonymiseService:
    """Turns each received (identifiable) instance into a de-identified one, or quarantines it.

    Redelivery is harmless: the output is a pure function of input and key, so a
    second run writes the same object and publishes the same result; an input
    already gone from ``incoming`` was finished before.

    In ``verify`` mode (a hub: no secrets, no vault) instances that arrive must already
    be de-identified: each is audited and passed on unchanged, or quarantined.
    """

    def __init__(
        self,
        settings: Settings,
        db: Database,
        bus: Bus,
        store: ObjectStore,
        profiles: ProjectProfiles,
    ) -> None:
        config = settings.anonymise
        self.profiles = profiles
        self.mode = config.mode
        self._site_secret = b""
        if self.mode == "deidentify":
            if config.secret is None:
                raise RuntimeError(
                    "set GIFTCLOUD_ANONYMISE__SECRET (base64 of at least 32 random bytes): "
                    "the site's pseudonymisation secret"
                )
            self._site_secret = base64.b64decode(config.secret.get_secret_value())
        self.settings = settings
        self.buckets = settings.storage.buckets
        self.db = db
        self.bus = bus
        self.store = store
        self.vault = Vault(
            db,
            VaultSealer(_pem(config.vault_public_key)) if config.vault_public_key else None,
            VaultOpener(_pem(config.vault_private_key)) if config.vault_private_key else None,
        )
        if self.mode == "deidentify" and self.vault.sealer is None:
            log.warning(
                "no vault public key (GIFTCLOUD_ANONYMISE__VAULT_PUBLIC_KEY): "
                "de-identified subjects cannot be re-identified at this site"
            )
        self.namespace = _namespace(config.namespace_file)
        self._deidentifiers = lru_cache(maxsize=256)(self._deidentifier)
        profiles.on_change(self._deidentifiers.cache_clear)
        self._log: Batcher[Deidentification] = Batcher(self._write_log)

    def _deidentifier(self, project: str) -> Deidentifier:
        keys = ProjectKeys.derive(self._site_secret, project)
        return Deidentifier(
            keys,
            self.profile(project),
            verify_output=self.settings.anonymise.verify,
            max_inflated=self.settings.limits.inflated_ceiling,
            namespace=self.namespace,
        )

    def profile(self, project: str) -> Profile:
        return self.profiles.profile(project)

    def deidentifier(self, project: str) -> Deidentifier:
        deidentifier: Deidentifier = self._deidentifiers(project)
        return deidentifier

    async def on_received(self, event: Event) -> None:
        if not isinstance(event, InstancesReceived):
            return
        files = await fetch(self.store, self.buckets.incoming, event.object_key, len(event.parts))
        if files is None:
            return
        key_id = ""
        if self.mode == "deidentify":
            deidentifier = self.deidentifier(event.project)
            key_id = deidentifier.keys.key_id
            outcomes = await asyncio.to_thread(
                lambda: [_deidentify(deidentifier, f) for f in files]
            )
        else:
            ceiling = self.settings.limits.inflated_ceiling
            accepted = self.profile(event.project)
            outcomes = await asyncio.to_thread(
                lambda: [_audit(f, accepted, ceiling) for f in files]
            )
        passed = [
            (part, outcome)
            for part, outcome in zip(event.parts, outcomes, strict=True)
            if not isinstance(outcome, Rejected)
        ]
        async with asyncio.TaskGroup() as group:  # one failure stops the rest: all are retried
            for part, data, outcome in zip(event.parts, files, outcomes, strict=True):
                if isinstance(outcome, Rejected):
                    group.create_task(self._quarantine(event, part, data, outcome.reason, key_id))
            if passed:
                group.create_task(self._pass_on(event, passed, key_id))
        if event.source == "release":  # released from quarantine and through this time
            for part, _ in passed:
                await self.store.delete(self.buckets.quarantine, part.name)
        await self.store.delete(self.buckets.incoming, event.object_key)

    async def _pass_on(
        self,
        event: InstancesReceived,
        passed: list[tuple[ReceivedPart, DeidentifiedInstance]],
        key_id: str,
    ) -> None:
        """One bundle in ``outgoing`` (named as the received one) and one message for archive."""
        await self.store.put(
            self.buckets.outgoing, event.object_key, pack([result.data for _, result in passed])
        )
        if self.mode == "deidentify":
            await self.vault.seal(event.project, [result for _, result in passed])
        await self.bus.publish(
            InstancesDeidentified(
                project=event.project,
                correlation_id=event.correlation_id,
                object_key=event.object_key,
                instances=tuple(
                    DeidentifiedPart(
                        received_key=part.name,
                        sha256=hashlib.sha256(result.data).hexdigest(),
                        size=len(result.data),
                        subject=result.subject,
                        study_uid=result.study_uid,
                        series_uid=result.series_uid,
                        sop_uid=result.sop_uid,
                        sop_class_uid=result.sop_class_uid,
                    )
                    for part, result in passed
                ),
            )
        )
        await self._log.submit_all(  # written with their neighbours, then acked
            [
                Deidentification(
                    object_key=part.name,
                    project=event.project,
                    outcome="deidentified",
                    subject=result.subject,
                    sop_uid=result.sop_uid,
                    key_id=key_id,
                    namespace=f"{result.namespace} {result.namespace_id}".strip(),
                )
                for part, result in passed
            ]
        )
        INSTANCES.labels("anonymise", "deidentified").inc(len(passed))

    async def on_project_event(self, event: Event) -> None:
        if isinstance(event, ProjectCreated | ProjectUpdated):
            networks = ",".join(event.networks) if isinstance(event, ProjectUpdated) else ""
            statement = insert(KnownProject).values(name=event.project, networks=networks)
            if isinstance(event, ProjectUpdated):
                statement = statement.on_conflict_do_update(
                    index_elements=["name"], set_={"networks": networks}
                )
            else:
                statement = statement.on_conflict_do_nothing()
            async with self.db.session() as session:
                await session.exec(statement)

    async def networks_of(self, project: str) -> list[str] | None:
        """The networks a project's data may be reached from ([] anywhere), None for a
        project anonymise has not heard of."""
        async with self.db.session() as session:
            known = await session.get(KnownProject, project)
        return None if known is None else [n for n in known.networks.split(",") if n]

    async def _quarantine(
        self, event: InstancesReceived, part: ReceivedPart, data: bytes, reason: str, key_id: str
    ) -> None:
        log.warning("rejected %s: %s", part.name, reason)
        await self.store.put(self.buckets.quarantine, part.name, data)
        await self.bus.publish(
            InstanceRejected(
                project=event.project,
                correlation_id=event.correlation_id,
                object_key=part.name,
                reason=reason,
            )
        )
        await self._log.submit(
            Deidentification(
                object_key=part.name,
                project=event.project,
                outcome="rejected",
                reason=reason,
                key_id=key_id,
            )
        )
        INSTANCES.labels("anonymise", "rejected").inc()

    async def _write_log(self, rows: list[Deidentification]) -> None:
        latest = {row.object_key: row.model_dump() for row in rows}  # one row per key
        statement = insert(Deidentification).values(list(latest.values()))
        columns = ("outcome", "subject", "sop_uid", "reason", "key_id", "namespace", "created_at")
        async with self.db.session() as session:
            await session.exec(
                statement.on_conflict_do_update(
                    index_elements=["object_key"],
                    set_={c: statement.excluded[c] for c in columns},
                )
            )

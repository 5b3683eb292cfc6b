"""The site's re-identification vault: who each subject was, per study, and the original UIDs
the engine replaced, sealed with the vault's public key as instances are de-identified and
opened only with its private key -- by a reidentifier's read (audited), or to map a result
from the hub back to the hospital's originals."""

from __future__ import annotations

import json
import logging
from typing import Any

from giftcloud_core.batching import Batcher
from giftcloud_core.db import Database
from giftcloud_core.errors import Forbidden, ServiceUnavailable
from giftcloud_core.gates import REVIEWER
from giftcloud_core.logs import correlation_id
from giftcloud_core.tokens import Principal
from giftcloud_deid import DeidentifiedInstance
from giftcloud_deid.vault import VaultOpener, VaultRecord, VaultSealer
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select

from giftcloud_anonymise.models import ReidentificationAudit, VaultEntry, VaultUids

log = logging.getLogger(__name__)


class Vault:
    def __init__(
        self, db: Database, sealer: VaultSealer | None, opener: VaultOpener | None
    ) -> None:
        self.db = db
        self.sealer = sealer
        self.opener = opener
        self._rows: Batcher[tuple[str, dict[str, Any]]] = Batcher(self._write)
        #: (project, subject, study) sealed by this process: their vault row exists already
        self._sealed: dict[tuple[str, str, str], None] = {}

    async def seal(self, project: str, results: list[DeidentifiedInstance]) -> None:
        """One record per study (its instances would seal the same again), and the original
        UIDs of these instances, one sealed row per study."""
        sealer = self.sealer
        if sealer is None:
            return
        studies = {(project, r.subject, r.study_uid): r for r in results}
        uids: dict[tuple[str, str, str], set[str]] = {}
        for r in results:
            uids.setdefault((project, r.subject, r.study_uid), set()).update(r.identity.uids)
        rows: list[tuple[str, dict[str, Any]]] = []
        for key, result in studies.items():
            _, subject, study = key
            common = {"project": project, "subject": subject, "study_uid": study}
            if key not in self._sealed:
                identity = result.identity
                record = VaultRecord(
                    subject=subject,
                    patient_id=identity.patient_id,
                    issuer=identity.issuer,
                    name=identity.name,
                    birth_date=identity.birth_date,
                    study_uid=identity.study_uid,
                    pseudonymised_study_uid=study,
                )
                sealed = sealer.seal(record)
                rows.append(("study", {**common, "sealed": sealed, "vault_key_id": sealer.key_id}))
            raw = json.dumps(sorted(uids[key])).encode()
            rows.append(
                (
                    "uids",
                    {**common, "sealed": sealer.seal_bytes(raw), "vault_key_id": sealer.key_id},
                )
            )
        await self._rows.submit_all(rows)
        self._sealed.update(dict.fromkeys(studies))
        if len(self._sealed) > 100_000:  # bounded: forget the oldest half
            for old in list(self._sealed)[:50_000]:
                del self._sealed[old]

    async def _write(self, rows: list[tuple[str, dict[str, Any]]]) -> None:
        studies = [row for kind, row in rows if kind == "study"]
        uids = [row for kind, row in rows if kind == "uids"]
        async with self.db.session() as session:
            if studies:
                await session.exec(insert(VaultEntry).values(studies).on_conflict_do_nothing())
            if uids:
                await session.exec(insert(VaultUids).values(uids))

    def _opener(self) -> VaultOpener:
        if self.opener is None:
            raise ServiceUnavailable(
                "this site does not serve re-identification (no vault private key configured)"
            )
        return self.opener

    async def reidentify(self, caller: Principal, project: str, subject: str) -> list[VaultRecord]:
        """The vault's records of a subject, for a reidentifier (the route's gate checked the
        project); every read is audited, a miss too."""
        if REVIEWER not in caller.site_roles:
            raise Forbidden(f"re-identification needs the {REVIEWER} role")
        caller.require(project)
        records, _ = await self._read(project, subject, caller.subject, uids=False)
        return records

    async def knows(self, project: str, subject: str) -> bool:
        """Whether this site sealed anything of the subject (a subject it sent)."""
        async with self.db.session() as session:
            row = (
                await session.exec(
                    select(VaultEntry.study_uid)
                    .where(VaultEntry.project == project, VaultEntry.subject == subject)
                    .limit(1)
                )
            ).first()
        return row is not None

    async def subject(
        self, project: str, subject: str, why: str
    ) -> tuple[list[VaultRecord], set[str]]:
        """A subject's study records and every original UID of theirs, opened for a result
        being mapped back; the read is recorded as a reidentifier's is, under ``why``."""
        return await self._read(project, subject, why, uids=True)

    async def _read(
        self, project: str, subject: str, who: str, uids: bool
    ) -> tuple[list[VaultRecord], set[str]]:
        """Open a subject's records (and, with ``uids``, their original UIDs); the read is
        kept in the re-identification audit and logged, a miss too."""
        opener = self._opener()
        async with self.db.session() as session:
            studies = (
                await session.exec(
                    select(VaultEntry).where(
                        VaultEntry.project == project, VaultEntry.subject == subject
                    )
                )
            ).all()
            sealed = (
                (
                    await session.exec(
                        select(VaultUids.sealed).where(
                            col(VaultUids.project) == project, col(VaultUids.subject) == subject
                        )
                    )
                ).all()
                if uids
                else []
            )
            session.add(
                ReidentificationAudit(
                    username=who,
                    project=project,
                    subject=subject,
                    records=len(studies),
                    correlation_id=correlation_id.get(),
                )
            )
        log.warning(
            "re-identification: %s read %d record(s) of %s in %s",
            who,
            len(studies),
            subject,
            project,
        )
        originals: set[str] = set()
        for raw in sealed:
            originals.update(json.loads(opener.open_bytes(raw)))
        return [opener.open(row.sealed) for row in studies], originals

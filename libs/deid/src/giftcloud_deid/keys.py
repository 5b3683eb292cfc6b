"""Keyed pseudonyms: HMAC-SHA256 with a per-project secret that never leaves the site."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

UID_ROOT = "2.25."
#: the form of every subject label :meth:`ProjectKeys.subject` makes
SUBJECT_LABEL = re.compile(r"SUBJ-[A-Z2-7]{12}")


@dataclass(frozen=True)
class ProjectKeys:
    """The pseudonymisation secret of one project, and its public key id."""

    project: str
    secret: bytes

    @classmethod
    def derive(cls, site_secret: bytes, project: str) -> ProjectKeys:
        """The project's secret derived from the site's (HKDF-SHA256, info = project name)."""
        if len(site_secret) < 32:
            raise ValueError("the site pseudonymisation secret must be at least 32 bytes")
        secret = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=b"giftcloud-pseudonym-v1",
            info=project.encode(),
        ).derive(site_secret)
        return cls(project=project, secret=secret)

    @property
    def key_id(self) -> str:
        """A public fingerprint of the secret, recorded in DeidentificationMethod."""
        return hashlib.sha256(b"key-id" + self.secret).hexdigest()[:12]

    def _mac(self, purpose: bytes, value: str) -> bytes:
        return hmac.new(self.secret, purpose + b"\x00" + value.encode(), hashlib.sha256).digest()

    def subject(self, issuer: str, patient_id: str) -> str:
        """The subject label of a patient: the same for the same patient, everywhere."""
        digest = self._mac(b"subject", f"{issuer}\x00{patient_id}")
        return "SUBJ-" + base64.b32encode(digest[:10]).decode()[:12]

    def uid(self, original: str) -> str:
        """A consistent replacement UID ``2.25.<int>`` (at most 44 characters)."""
        return UID_ROOT + str(int.from_bytes(self._mac(b"uid", original)[:16], "big"))

    def date_shift_days(self, subject: str) -> int:
        """Days to move every date of a subject (the same for all their data): 1 to 3650 back."""
        return -(1 + int.from_bytes(self._mac(b"date-shift", subject)[:4], "big") % 3650)

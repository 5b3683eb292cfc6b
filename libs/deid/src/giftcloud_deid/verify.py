"""Verification: nothing that identified the input may be found in the output.

:func:`verify` scans the encoded output for the identifiers of the input (a hub, which
has no original, audits content against the declared profile instead:
:mod:`giftcloud_deid.conformance`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pydicom.dataset import Dataset

#: attributes whose values identify the patient or people around them (top level)
IDENTIFYING = {
    0x00100010: "PatientName",
    0x00100020: "PatientID",
    0x00101000: "OtherPatientIDs",
    0x00101001: "OtherPatientNames",
    0x00101005: "PatientBirthName",
    0x00101060: "PatientMotherBirthName",
    0x00101040: "PatientAddress",
    0x00102154: "PatientTelephoneNumbers",
    0x00102155: "PatientTelecomInformation",
    0x00101090: "MedicalRecordLocator",
    0x00080050: "AccessionNumber",
    0x00080090: "ReferringPhysicianName",
    0x00081050: "PerformingPhysicianName",
    0x00081060: "NameOfPhysiciansReadingStudy",
    0x00081048: "PhysiciansOfRecord",
    0x00081070: "OperatorsName",
    0x00321032: "RequestingPhysician",
    0x00380010: "AdmissionID",
    0x00200010: "StudyID",
}
_UIDS = (0x00080018, 0x0020000D, 0x0020000E, 0x00200052)
_MIN_ID = 4  # shorter IDs and name parts match by chance; they are not searched for
_MIN_TEXT = 10
#: name components that are titles and suffixes, not the person ("SMITH^JOHN^^MR")
_HONORIFICS = frozenset({"MR", "MRS", "MS", "DR", "JR", "SR", "II", "III", "IV", "MD", "PHD"})


def _text(ds: Dataset, tag: int) -> list[str]:
    if tag not in ds:
        return []
    value = ds.get_item(tag).value
    if isinstance(value, bytes):
        text = value.decode("latin-1", "replace").rstrip("\x00 ")
        return [v.strip() for v in text.split("\\") if v.strip()]
    if value is None:
        return []
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    if isinstance(value, Iterable):
        return [str(v).strip() for v in value if str(v).strip()]
    return [str(value)]


@dataclass
class Identity:
    """Who the input was: what the vault keeps, and what the verifier searches for."""

    patient_id: str = ""
    issuer: str = ""
    name: str = ""
    birth_date: str = ""
    study_uid: str = ""
    identifiers: dict[str, str] = field(default_factory=dict)  # value → what it was
    uids: set[str] = field(default_factory=set)  # every UID the engine replaced
    removed_text: set[str] = field(default_factory=set)
    #: name components too short to search for in the output, cleaned from descriptions
    name_parts: set[str] = field(default_factory=set)

    @classmethod
    def from_values(cls, text: Callable[[int], list[str]]) -> Identity:
        """From an accessor giving the (top-level) values of a tag as strings."""

        def first(tag: int) -> str:
            return (text(tag) or [""])[0]

        identity = cls(
            patient_id=first(0x00100020),
            issuer=first(0x00100021),
            name=first(0x00100010),
            birth_date=first(0x00100030),
            study_uid=first(0x0020000D),
        )
        for tag, what in IDENTIFYING.items():
            for value in text(tag):
                identity.add(value, what)
                if tag in (0x00100010, 0x00101001, 0x00101005, 0x00101060, 0x00080090):
                    for part in re.split(r"[\^=\s,]", value):
                        identity.add(part.strip(), what)
                        short = 2 <= len(part.strip()) < _MIN_ID
                        if short and part.strip().upper() not in _HONORIFICS:
                            identity.name_parts.add(part.strip())
        if identity.birth_date:
            identity.identifiers[identity.birth_date] = "PatientBirthDate"
        return identity

    def add(self, value: str, what: str) -> None:
        if len(value) >= _MIN_ID and value.upper() not in ("ANONYMIZED", "ANONYMOUS"):
            self.identifiers.setdefault(value, what)

    def note_removed(self, values: list[str]) -> None:
        """Free text the profile took out: it must not turn up elsewhere in the output."""
        for value in values:
            if len(value) >= _MIN_TEXT:
                self.removed_text.add(value)

    def grouping_id(self, study_uid: str) -> str:
        """The patient key for the subject: the ID, else name + birth date, else the study."""
        if self.patient_id:
            return self.patient_id
        by_name = "|".join(v for v in (self.name, self.birth_date) if v)
        return by_name or f"study:{study_uid}"

    def needles(self, *, dates: bool = True) -> dict[bytes, str]:
        found: dict[bytes, str] = {}
        for value, what in self.identifiers.items():
            if what == "PatientBirthDate" and not dates:
                continue
            found[value.encode("latin-1", "replace")] = what
            found[value.encode("utf-8")] = what
        for uid in self.uids:
            found[uid.encode("ascii", "replace")] = "original UID"
        for text in self.removed_text:
            found[text.encode("utf-8")] = "removed free text"
        return found


def verify(scanned: bytes, identity: Identity, *, dates: bool = True) -> list[str]:
    """Identifiers of the input found in ``scanned`` (the encoded elements of the output
    that came from the input: every value at any depth, private data; the caller leaves
    out pixel data, where short values turn up by chance): empty when it is clean."""
    needles = identity.needles(dates=dates)
    if not needles:
        return []
    alternatives = b"|".join(re.escape(n) for n in sorted(needles, key=len, reverse=True))
    pattern = re.compile(rb"(?<![0-9A-Za-z])(?:" + alternatives + rb")(?![0-9A-Za-z])", re.I)
    hits = []
    for match in pattern.finditer(scanned):
        found = match.group(0)
        what = needles.get(found) or next(
            (w for n, w in needles.items() if n.lower() == found.lower()), "identifier"
        )
        hits.append(f"{what} at byte {match.start()}")
    return hits[:10]

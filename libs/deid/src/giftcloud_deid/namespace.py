"""The patient namespace: which PatientIDs name the same person.

A subject is keyed on (namespace, PatientID). The namespace comes from the file's issuer
(IssuerOfPatientID, or UniversalEntityID / LocalNamespaceEntityID in
IssuerOfPatientIDQualifiersSequence) through a site's table of aliases, so a modality that
leaves the issuer out, or a PACS that spells it ``HOSP-A``, ``HOSPA`` or by its OID, does
not split one patient into two subjects.

In YAML (the site's ``namespace.yaml``, or ``patient_namespace:`` in a project profile)::

    site: st-elsewhere          # files without an issuer are the site's own patients
    issuers:                    # each namespace and the issuer values that mean it
      st-elsewhere: [HOSP-A, HOSPA, "2.16.840.1.113883.3.1234"]
      north-general: [NGH, "2.16.840.1.113883.3.5678"]
    unknown_issuer: site        # site (a one-hospital site) | refuse (a site of several)
    use_other_patient_ids: false  # true: an ID of the site's own namespace found in
                                  # OtherPatientIDsSequence keys the subject instead
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from giftcloud_deid.errors import Rejected

_KEYS = {"site", "issuers", "unknown_issuer", "use_other_patient_ids"}


class NamespaceError(ValueError):
    """A namespace setting that cannot be used; the message says which entry and why."""


def fold(issuer: str) -> str:
    """How issuers are compared: trimmed, case-insensitive."""
    return " ".join(issuer.split()).casefold()


@dataclass(frozen=True)
class PatientNamespace:
    site: str = "site"
    #: namespace -> the issuer values that mean it (the namespace's own name means it too)
    issuers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    unknown_issuer: Literal["site", "refuse"] = "site"
    use_other_patient_ids: bool = False
    _table: dict[str, str] = field(init=False, repr=False, compare=False, default_factory=dict)
    _fingerprint: str = field(init=False, repr=False, compare=False, default="")

    def __post_init__(self) -> None:
        table: dict[str, str] = {}
        for namespace, values in {self.site: (), **self.issuers}.items():
            for value in (namespace, *values):
                owner = table.setdefault(fold(value), namespace)
                if owner != namespace:
                    raise NamespaceError(
                        f"issuer {value!r} is listed under both {owner!r} and {namespace!r}"
                    )
        canonical = json.dumps(self.description(), sort_keys=True).encode()
        # built once: every file of a site is resolved through them
        object.__setattr__(self, "_table", table)
        object.__setattr__(self, "_fingerprint", hashlib.sha256(canonical).hexdigest()[:12])

    def known(self, issuers: Sequence[str]) -> str | None:
        """The namespace the table gives one of ``issuers`` (None if it gives none)."""
        table = self._table
        return next((table[fold(i)] for i in issuers if fold(i) in table), None)

    def resolve(self, issuers: Sequence[str]) -> str:
        """The namespace of a file's issuer values (empty ones ignored): :class:`Rejected`
        for an issuer the table does not know, when unknown issuers are refused."""
        named = [i for i in issuers if i.strip()]
        if not named:
            return self.site
        table = self._table
        for issuer in named:
            if fold(issuer) in table:
                return table[fold(issuer)]
        if self.unknown_issuer == "refuse":
            raise Rejected(
                f"the patient's issuer {named[0][:64]!r} is not in this site's patient namespace"
                " table: add it to the issuers of the namespace it belongs to"
            )
        return self.site

    def description(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "issuers": {k: list(v) for k, v in sorted(self.issuers.items())},
            "unknown_issuer": self.unknown_issuer,
            "use_other_patient_ids": self.use_other_patient_ids,
        }

    @property
    def fingerprint(self) -> str:
        """Recorded with every de-identification, so a change of the table is visible."""
        return self._fingerprint

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> PatientNamespace:
        unknown = set(raw) - _KEYS
        if unknown:
            raise NamespaceError(
                f"unknown patient namespace key(s): {', '.join(sorted(unknown))}"
                f" (known: {', '.join(sorted(_KEYS))})"
            )
        issuers = raw.get("issuers") or {}
        if not isinstance(issuers, Mapping):
            raise NamespaceError("issuers: a mapping of namespace to its issuer values")
        policy = str(raw.get("unknown_issuer", "site"))
        if policy not in ("site", "refuse"):
            raise NamespaceError(f"unknown_issuer: {policy!r} is neither site nor refuse")
        site = str(raw.get("site", "site")).strip()
        if not site:
            raise NamespaceError("site: the site's namespace needs a name")
        return cls(
            site=site,
            issuers={
                str(name): tuple(str(v) for v in (values or [])) for name, values in issuers.items()
            },
            unknown_issuer="refuse" if policy == "refuse" else "site",
            use_other_patient_ids=bool(raw.get("use_other_patient_ids", False)),
        )

    @classmethod
    def load(cls, path: Path) -> PatientNamespace:
        """From a YAML file: the mapping itself, or under ``patient_namespace:``."""
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise NamespaceError(f"{path}: {exc}") from exc
        if not isinstance(raw, Mapping):
            raise NamespaceError(f"{path}: a patient namespace is a mapping")
        inner = raw.get("patient_namespace", raw)
        if not isinstance(inner, Mapping):
            raise NamespaceError(f"{path}: patient_namespace is a mapping")
        try:
            return cls.from_mapping(inner)
        except NamespaceError as exc:
            raise NamespaceError(f"{path}: {exc}") from exc


#: a one-hospital site: every patient is the site's own, whatever issuer a file names
DEFAULT_NAMESPACE = PatientNamespace()

"""A project's de-identification profile: options, extra rules, allowed SOP classes.

In YAML (every key optional)::

    name: brain-mri-study
    options: [retain_modified_dates, retain_patient_characteristics, clean_descriptors]
    rules:                       # by keyword or "(gggg,eeee)"
      SeriesDescription: keep
      "(0008,1030)": remove
      StudyComments: empty
      InstitutionName: {replace: "Site A"}
      OperatorsName: hash
    sop_classes: [1.2.840.10008.5.1.4.1.1.4]    # others are rejected
    dry_run: false
    burned_in_attested: [US, SC] # an owner attests these carry no burned-in text
    burned_in:                   # extra burned-in text rules
      - label: ACME console captures
        match: {Manufacturer: ACME, Rows: 480, Columns: 640}
        regions: [{x: 0, y: 0, width: 640, height: 40}]
    patient_namespace:           # this project's own (else the site's): see namespace.py
      site: st-elsewhere
      issuers: {st-elsewhere: [HOSP-A, HOSPA]}
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydicom.datadict import tag_for_keyword

from giftcloud_deid.namespace import NamespaceError, PatientNamespace
from giftcloud_deid.rules import DEFAULT_OPTIONS, Option

PROFILE_VERSION = "1"
#: the kinds of image suspected of burned-in text when their header is silent, for which a
#: project owner may attest that the project's carry none (pixels.suspicion)
ATTESTABLE = {
    "US": "ultrasound images",
    "XA": "X-ray angiography images",
    "OT": "images of modality OT (other)",
    "SC": "secondary captures",
    "SCREEN": "screen captures",
}
_TAG = re.compile(r"^\(?\s*([0-9A-Fa-f]{4})\s*,\s*([0-9A-Fa-f]{4})\s*\)?$")
_SIMPLE_RULES = {"keep", "remove", "empty", "hash"}


class ProfileError(ValueError):
    """A profile that cannot be used; the message says which entry and why."""


@dataclass(frozen=True)
class ExtraRule:
    """An attribute rule of a project: keep / remove / empty / replace / hash."""

    action: str
    value: str = ""


@dataclass(frozen=True)
class RegionRule:
    """A project's own burned-in text rule: attribute equalities → regions to blank."""

    label: str
    match: dict[str, str]
    regions: tuple[tuple[int, int, int, int], ...]


@dataclass(frozen=True)
class Profile:
    name: str = "default"
    options: frozenset[Option] = DEFAULT_OPTIONS
    rules: dict[int, ExtraRule] = field(default_factory=dict)
    sop_classes: frozenset[str] | None = None
    dry_run: bool = False
    burned_in: tuple[RegionRule, ...] = ()
    #: the project's patient namespace (None: the site's)
    namespace: PatientNamespace | None = None
    #: kinds of image (:data:`ATTESTABLE`) an owner attested carry no burned-in text
    attested: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if {Option.RETAIN_FULL_DATES, Option.RETAIN_MODIFIED_DATES} <= self.options:
            raise ProfileError("retain_full_dates and retain_modified_dates exclude each other")

    @property
    def description(self) -> str:
        """For DeidentificationMethod: the profile's name, version and options."""
        options = ",".join(sorted(o.value for o in self.options)) or "basic"
        return f"profile {self.name} v{PROFILE_VERSION} ({options})"

    @classmethod
    def from_yaml(cls, text: str) -> Profile:
        return cls.from_mapping(_mapping(text))

    @classmethod
    def load(cls, path: Path) -> Profile:
        return cls.from_yaml(path.read_text())

    @classmethod
    def from_mapping(cls, raw: dict[str, Any]) -> Profile:
        known = {"name", "options", "rules", "sop_classes", "dry_run", "burned_in"}
        known |= {"burned_in_attested"}
        unknown = set(raw) - known - {"patient_namespace"}
        if unknown:
            raise ProfileError(f"unknown profile key(s): {', '.join(sorted(unknown))}")
        options: frozenset[Option] = DEFAULT_OPTIONS
        if "options" in raw:
            try:
                options = frozenset(Option(o) for o in raw["options"] or [])
            except ValueError as exc:
                valid = ", ".join(o.value for o in Option)
                raise ProfileError(f"{exc}; options are: {valid}") from exc
        sop_classes = raw.get("sop_classes")
        namespace = None
        if raw.get("patient_namespace") is not None:
            try:
                namespace = PatientNamespace.from_mapping(raw["patient_namespace"])
            except (NamespaceError, AttributeError) as exc:
                raise ProfileError(f"patient_namespace: {exc}") from exc
        attested = frozenset(str(k).upper() for k in raw.get("burned_in_attested") or [])
        if attested - set(ATTESTABLE):
            unknown_kinds = ", ".join(sorted(attested - set(ATTESTABLE)))
            raise ProfileError(
                f"burned_in_attested: {unknown_kinds} is not one of {', '.join(ATTESTABLE)}"
            )
        return cls(
            name=str(raw.get("name", "custom")),
            attested=attested,
            options=options,
            rules={parse_tag(k): _rule(k, v) for k, v in (raw.get("rules") or {}).items()},
            sop_classes=frozenset(str(s) for s in sop_classes) if sop_classes else None,
            dry_run=bool(raw.get("dry_run", False)),
            burned_in=tuple(_region_rule(r) for r in raw.get("burned_in") or []),
            namespace=namespace,
        )


def project_profile(
    folder: Path | None, project: str, chosen: dict[str, Any] | None = None
) -> Profile:
    """A project's profile: the server's ``{folder}/{project}.yaml`` (else the default), with
    what the project's owners chose on its page over it (options, attestations)."""
    path = folder / f"{project}.yaml" if folder is not None else None
    raw: dict[str, Any] = {"name": "default"}
    if path is not None and path.is_file():
        raw = {"name": "custom", **_mapping(path.read_text(), f"{path.name}: ")}
    return Profile.from_mapping({**raw, **(chosen or {})})


def _mapping(text: str, where: str = "") -> dict[str, Any]:
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ProfileError(f"{where}not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ProfileError(f"{where}a profile is a mapping")
    return raw


def parse_tag(key: str | int) -> int:
    """A tag from ``"(0008,103E)"``, ``"0008103E"`` or a keyword."""
    if isinstance(key, int):
        return key
    match = _TAG.match(key.strip())
    if match:
        return int(match.group(1) + match.group(2), 16)
    if re.fullmatch(r"[0-9A-Fa-f]{8}", key):
        return int(key, 16)
    tag = tag_for_keyword(key)
    if tag is None:
        raise ProfileError(f"{key!r} is neither a tag nor a DICOM keyword")
    return int(tag)


def _rule(key: str, value: object) -> ExtraRule:
    if isinstance(value, str) and value in _SIMPLE_RULES:
        return ExtraRule(value)
    if isinstance(value, dict) and set(value) == {"replace"}:
        return ExtraRule("replace", str(value["replace"]))
    raise ProfileError(
        f"rule for {key}: {value!r} is not one of keep, remove, empty, hash or {{replace: VALUE}}"
    )


def _region_rule(raw: dict[str, Any]) -> RegionRule:
    try:
        regions = tuple(
            (int(r["x"]), int(r["y"]), int(r["width"]), int(r["height"])) for r in raw["regions"]
        )
        return RegionRule(
            label=str(raw.get("label", "project rule")),
            match={str(k): str(v) for k, v in raw["match"].items()},
            regions=regions,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ProfileError(f"burned-in rule {raw!r}: needs match and regions ({exc})") from exc


DEFAULT_PROFILE = Profile()

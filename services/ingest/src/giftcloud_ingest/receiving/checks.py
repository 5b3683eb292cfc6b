"""What an arriving file must be before it is accepted: a whole DICOM instance (of the
study a URL names), and at a site what the project's profile decides from its header."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import lru_cache

from giftcloud_core.settings import Settings
from giftcloud_deid import (
    DEFAULT_NAMESPACE,
    Admission,
    PatientNamespace,
    Rejected,
)
from giftcloud_deid.profile import project_profile
from giftcloud_dicom.instance import (
    OUT_OF_RESOURCES,
    REFUSED_BY_PROFILE,
    SOP_CLASS_NOT_SUPPORTED,
    STUDY_UID_MISMATCH,
    InvalidInstance,
    inspect_instance,
)

from giftcloud_ingest.receiving.profiles import ChosenProfiles

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stored:
    sop_class_uid: str
    sop_instance_uid: str
    study_uid: str
    series_uid: str
    #: bytes a reader holds: the file's size, or what it inflates to
    held_bytes: int = 0
    #: its place in the upload (0-based): how clients tie an answer to the file they sent
    index: int = -1


@dataclass(frozen=True)
class Failed:
    sop_class_uid: str
    sop_instance_uid: str
    reason: int
    message: str
    index: int = -1


@dataclass
class StoreResult:
    upload_id: str
    stored: list[Stored] = field(default_factory=list)
    failed: list[Failed] = field(default_factory=list)


def check_instance(
    data: bytes, study_uid: str | None, max_inflated: int, admission: Admission | None
) -> Stored | Failed:
    try:
        info = inspect_instance(data, max_inflated=max_inflated)
    except InvalidInstance as exc:
        return Failed(exc.sop_class_uid, exc.sop_instance_uid, exc.reason, exc.message)
    if study_uid is not None and info.study_uid != study_uid:
        return Failed(
            info.sop_class_uid,
            info.sop_instance_uid,
            STUDY_UID_MISMATCH,
            f"instance is of study {info.study_uid}, not {study_uid} named in the URL",
        )
    if admission is not None:
        try:  # what the project's profile decides from the header: refused now, not later
            admission.check(data)
        except Rejected as exc:
            code = SOP_CLASS_NOT_SUPPORTED if "allow-list" in exc.reason else REFUSED_BY_PROFILE
            return Failed(info.sop_class_uid, info.sop_instance_uid, code, exc.reason)
    return Stored(
        info.sop_class_uid,
        info.sop_instance_uid,
        info.study_uid,
        info.series_uid,
        max(len(data), info.inflated_size),
    )


def not_stored(info: Stored) -> Failed:
    return Failed(
        info.sop_class_uid,
        info.sop_instance_uid,
        OUT_OF_RESOURCES,
        "the instance could not be stored; try again",
    )


class Admissions:
    """At a site, what each project's profile (as anonymise reads it) decides from a header,
    cached per project; a hub de-identifies nothing and decides nothing here."""

    def __init__(self, settings: Settings, chosen: ChosenProfiles | None = None) -> None:
        self.settings = settings
        self.chosen = chosen
        self._cached = lru_cache(maxsize=256)(self._load)
        if chosen is not None:
            chosen.on_change(self._cached.cache_clear)

    def of(self, project: str) -> Admission | None:
        if self.settings.anonymise.mode != "deidentify":
            return None
        found: Admission = self._cached(project)
        return found

    def _load(self, project: str) -> Admission:
        config = self.settings.anonymise
        chosen = self.chosen.of(project) if self.chosen is not None else None
        profile = project_profile(config.profiles_dir, project, chosen)
        namespace = PatientNamespace.load(config.namespace_file) if config.namespace_file else None
        return Admission(
            profile,
            namespace or DEFAULT_NAMESPACE,
            max_inflated=self.settings.limits.inflated_ceiling,
        )

    def check(self, data: bytes, project: str, study_uid: str | None = None) -> Stored | Failed:
        """One file checked as it arrives for ``project`` (of ``study_uid`` if named)."""
        return check_instance(
            data, study_uid, self.settings.limits.inflated_ceiling, self.of(project)
        )

"""A QIDO-RS result (PS3.18 §10.6.3): each attribute a search returns at its level, from
the catalogue's columns and the DICOM JSON it keeps, BulkDataURIs made absolute."""

from typing import Any

from giftcloud_api.catalogue.levels import LEVELS, Level
from giftcloud_api.dicomweb.params import RETURN_KEYS, Search, element, empty, kept, level_of
from giftcloud_api.dicomweb.search import Found

#: what ``includefield=all`` adds at study level beyond what the catalogue holds, present
#: (empty when not held) as PS3.18 lists them: Study Description, Anatomic Regions in Study,
#: Name of Physician(s) Reading Study, Admitting Diagnoses, Referenced Study Sequence,
#: Patient's Age, Size and Weight, Occupation, Additional Patient History
ALL_AT_STUDY = (
    "00080063",
    "00081030",
    "00081060",
    "00081080",
    "00081110",
    "00101010",
    "00101020",
    "00101030",
    "00102180",
    "001021B0",
)


class Values:
    """The attributes of one result, looked up where the catalogue keeps them."""

    def __init__(self, found: Found, level: Level, root: str) -> None:
        study, series, instance = found.study, found.series, found.instance
        self.level = level
        url = f"{root}/studies/{study.study_uid}"
        known: dict[str, dict[str, Any]] = {
            "00080056": element("CS", "ONLINE"),
            "0020000D": element("UI", study.study_uid),
            "00080061": element("CS", list(study.modalities)),
            "00201206": element("IS", study.series_count),
            "00201208": element("IS", study.instance_count),
            "00100020": study.attributes.get("00100020") or element("LO", study.subject),
        }
        # what the catalogue's own columns hold (before an instance's metadata moved in)
        self.columns: dict[str, tuple[str, Any]] = {
            "00080020": ("DA", study.study_date),
            "00081030": ("LO", study.description),
        }
        self.sources = [study.attributes]
        if series is not None:
            known["0020000E"] = element("UI", series.series_uid)
            known["00201209"] = element("IS", series.instance_count)
            self.sources.insert(0, series.attributes)
            self.columns["00080060"] = ("CS", series.modality)
            self.columns["0008103E"] = ("LO", series.description)
            self.columns["00200011"] = ("IS", series.number)
            if level != "study":
                url += f"/series/{series.series_uid}"
        if instance is not None:
            known["00080018"] = element("UI", instance.sop_uid)
            known["00080016"] = element("UI", instance.sop_class_uid)
            if instance.attributes:
                self.sources.insert(0, instance.attributes)
            self.columns["00200013"] = ("IS", instance.number)
            if level == "instance":
                url += f"/instances/{instance.sop_uid}"
        known["00081190"] = element("UR", url)
        self.known = known

    def held(self) -> set[str]:
        """Every attribute the catalogue holds for this result (``includefield=all``): its
        own values, its columns that are set, what it keeps of the files (no bulk data)."""
        tags = set(self.known)
        tags |= {tag for tag, (_, value) in self.columns.items() if value not in (None, "")}
        for attributes in self.sources:
            tags |= set(kept(attributes))
        return {tag for tag in tags if LEVELS.index(level_of(tag)) <= LEVELS.index(self.level)}

    def __call__(self, tag: str) -> dict[str, Any]:
        value = self.known.get(tag)
        if value is not None:
            return value
        if LEVELS.index(level_of(tag)) > LEVELS.index(self.level):
            return empty(tag)  # a study has many series: a series attribute has no one value
        for attributes in self.sources:
            found: dict[str, Any] | None = attributes.get(tag)
            if found is not None:
                bulk = "BulkDataURI" in found or "InlineBinary" in found
                return empty(tag) if bulk else found
        column = self.columns.get(tag)
        if column is not None and column[1] not in (None, ""):
            return element(*column)
        return empty(tag)


def tags_of(search: Search, parents: tuple[Level, ...]) -> set[str]:
    """The attributes every result of a search carries: the required ones of its level (and
    of the parent levels a search across them returns) and what ``includefield`` named."""
    tags = set(RETURN_KEYS[search.level]) | search.include
    for parent in parents:
        tags |= set(RETURN_KEYS[parent])
    return tags


def result(found: Found, search: Search, tags: set[str], root: str) -> dict[str, Any]:
    """A result's DICOM JSON: ``tags``, and for ``includefield=all`` every attribute the
    catalogue holds at the search's level and above (and PS3.18's list at study level)."""
    value = Values(found, search.level, root)
    if search.include_all:
        tags = tags | value.held() | set(ALL_AT_STUDY)
    return {tag: value(tag) for tag in sorted(tags)}

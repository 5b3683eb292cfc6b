"""Burned-in text: region rules per manufacturer / model / image size, and the policy.

An image that may carry burned-in text (BurnedInAnnotation YES, or absent for US, SC,
OT, XA and screen captures) is passed on only when a rule blanks its text regions;
otherwise it is rejected with a reason. Pixel data is decoded only when a rule fires.
The rules (``data/burned_in.json``) are generated from pydicom/deid's filter lists by
``libs/deid/scripts/build_tables.py``; a project adds its own in its profile.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import numpy as np
from giftcloud_dicom.quiet import quiet
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
)

from giftcloud_deid.errors import Rejected
from giftcloud_deid.profile import ATTESTABLE, RegionRule

RISKY_MODALITIES = {"US", "SC", "OT", "XA"}
_SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
_UNCOMPRESSED = {ImplicitVRLittleEndian, ExplicitVRLittleEndian, UID("1.2.840.10008.1.2.2")}


@dataclass(frozen=True)
class Condition:
    op: str
    field: str
    value: str
    pattern: re.Pattern[str] | None

    def holds(self, fields: dict[str, str | None]) -> bool:
        value = fields.get(self.field)
        if self.op == "missing":
            return value is None
        if self.op == "present":
            return value is not None
        if self.op == "empty":
            return value is not None and not value.strip()
        if value is None:
            return False
        if self.op == "equals":
            return value.strip().lower() == self.value.lower()
        if self.op == "notequals":
            return value.strip().lower() != self.value.lower()
        found = self.pattern is not None and self.pattern.search(value) is not None
        return found if self.op == "contains" else not found


#: a region to blank: x, y, width, height (None: the whole image)
Region = tuple[int, int, int, int] | None


@dataclass(frozen=True)
class Rule:
    label: str
    kind: str  # graylist (regions to blank), blacklist (never pass), whitelist (clean)
    all_of: tuple[tuple[Condition, ...], ...]
    regions: tuple[Region, ...]
    keep_from: str = ""

    def matches(self, fields: dict[str, str | None]) -> bool:
        return all(any(c.holds(fields) for c in group) for group in self.all_of)


def _condition(raw: dict[str, str]) -> Condition:
    pattern = re.compile(raw["value"], re.IGNORECASE) if raw["op"].endswith("contains") else None
    return Condition(raw["op"], raw["field"], raw["value"], pattern)


@cache
def _table_rules() -> tuple[Rule, ...]:
    raw = json.loads(resources.files("giftcloud_deid").joinpath("data/burned_in.json").read_text())
    rules = []
    for entry in raw["rules"]:
        if not entry["all"]:
            continue  # a rule without criteria would blank every image
        regions: list[Region] = [
            None if r.get("all") else (r["x"], r["y"], r["width"], r["height"])
            for r in entry["regions"]
        ]
        rules.append(
            Rule(
                label=entry["label"],
                kind=entry["list"],
                all_of=tuple(tuple(_condition(c) for c in group) for group in entry["all"]),
                regions=tuple(regions),
                keep_from=entry.get("keep_from", ""),
            )
        )
    return tuple(rules)


def _project_rule(rule: RegionRule) -> Rule:
    conditions = tuple(
        (Condition("equals", field, value, None),) for field, value in rule.match.items()
    )
    return Rule(rule.label, "graylist", conditions, tuple(rule.regions))


#: an attribute's value by keyword, as text ("" when empty, None when absent)
Fields = Callable[[str], str | None]


def dataset_fields(ds: Dataset) -> Fields:
    def field(name: str) -> str | None:
        tag = tag_for_keyword(name)
        if tag is None:
            return None  # (deid's lists carry a few misspelt keywords: they never match)
        source = ds.file_meta if tag >> 16 == 2 and ds.file_meta is not None else ds
        if tag not in source:
            return None
        with quiet():
            value = source[tag].value
        if value is None:
            return ""
        if isinstance(value, Sequence) and not isinstance(value, str | bytes):
            return "\\".join(str(v) for v in value)
        return str(value)

    return field


class BurnedInRules:
    """The rules a site applies: the project's first, then the table's."""

    def __init__(self, rules: Sequence[Rule], attested: frozenset[str] = frozenset()) -> None:
        self.rules = tuple(rules)
        #: the kinds of image an owner attested carry no burned-in text (profile.ATTESTABLE)
        self.attested = attested
        self.fields = sorted({c.field for r in self.rules for g in r.all_of for c in g})
        # images of one series share their fields; bounded, as a service runs for months
        self._decide = lru_cache(maxsize=4096)(self._decide_uncached)

    @classmethod
    def default(
        cls, project_rules: Sequence[RegionRule] = (), attested: frozenset[str] = frozenset()
    ) -> BurnedInRules:
        return cls([*(_project_rule(r) for r in project_rules), *_table_rules()], attested)

    def _decide_uncached(self, key: tuple[tuple[str, str | None], ...]) -> Rule | None:
        fields = dict(key)
        for kind in ("whitelist", "graylist", "blacklist"):
            for rule in self.rules:
                if rule.kind != kind or not rule.matches(fields):
                    continue
                if kind == "graylist" and not (rule.regions or rule.keep_from):
                    continue  # flags only: not a way to clean
                return rule
        return None

    def decide(self, fields: Fields) -> Rule | None:
        return self._decide(tuple((name, fields(name)) for name in self.fields))

    def needs_cleaning(self, fields: Fields) -> Rule | None:
        """The rule whose regions must be blanked; None when the image may pass as it is.

        Raises :class:`Rejected` for an image that may carry burned-in text and that
        no rule covers.
        """
        rule = self.decide(fields)
        kind, risky = suspicion(fields)
        if rule is not None and rule.kind == "whitelist":
            return None
        if rule is None or rule.kind == "blacklist":
            # deid's blacklist marks images it has seen carry text: reason enough to
            # reject a suspect image, not to reject every CT without an ImageType
            if risky and kind not in self.attested:
                listed = f"; listed by rule {rule.label!r}" if rule is not None else ""
                raise Rejected(
                    f"the image may carry burned-in text ({risky}{listed}) and no burned-in "
                    f"text rule covers it. {way_out(kind)}"
                )
            return None
        return rule

    def apply(self, ds: Dataset, rule: Rule) -> str:
        """Blank the regions of a rule in a pydicom dataset; the rule's label."""
        if rule.keep_from:
            regions = _outside_us_regions(ds)
            if regions is None:
                raise Rejected("ultrasound regions are missing or unreadable")
            mask_regions(ds, regions, keep=True)
        else:
            mask_regions(ds, rule.regions)
        return rule.label


def suspicion(fields: Fields) -> tuple[str, str]:
    """Why an image may carry burned-in text: (the kind of image an owner may attest for —
    one of :data:`giftcloud_deid.profile.ATTESTABLE`, '' when the header itself says YES —,
    the reason); ('', '') if it is not suspected to."""
    burned = (fields("BurnedInAnnotation") or "").strip().upper()
    if burned == "YES":
        return "", "BurnedInAnnotation is YES"
    if burned == "NO":
        return "", ""
    modality = (fields("Modality") or "").strip().upper()
    if (fields("SOPClassUID") or "").startswith(_SECONDARY_CAPTURE):
        return "SC", "a secondary capture without BurnedInAnnotation"
    if modality in RISKY_MODALITIES:
        return modality, f"modality {modality} without BurnedInAnnotation"
    image_type = fields("ImageType") or ""
    if "SCREEN" in image_type.upper():
        return "SCREEN", "a screen capture"
    return "", ""


def way_out(kind: str) -> str:
    """What a refused image's project can do about it, in one sentence."""
    rule = "add a masking rule for the device (burned_in in the project's profile)"
    if not kind:
        return f"Next step: {rule}, or remove the text before sending."
    return (
        f"Next step: a project owner attests that the project's {ATTESTABLE[kind]} carry no "
        f"burned-in text (the project's De-identification page), or {rule}."
    )


def _outside_us_regions(ds: Dataset) -> list[Region] | None:
    regions: list[Region] = []
    for item in ds.get("SequenceOfUltrasoundRegions", []) or []:
        try:
            x0, y0 = int(item.RegionLocationMinX0), int(item.RegionLocationMinY0)
            x1, y1 = int(item.RegionLocationMaxX1), int(item.RegionLocationMaxY1)
        except (AttributeError, TypeError, ValueError):
            return None
        regions.append((x0, y0, x1 - x0 + 1, y1 - y0 + 1))
    return regions or None


def mask_regions(ds: Dataset, regions: Sequence[Region], *, keep: bool = False) -> None:
    """Zero the regions (or, with ``keep``, everything outside them) in every frame.

    Uncompressed data is rewritten in its own transfer syntax, RLE as RLE; data from the
    JPEG family is decoded and written uncompressed (Explicit VR Little Endian), which is
    lossless. Pixel data that cannot be decoded is rejected.
    """
    if int(ds.get("BitsAllocated", 0) or 0) == 1:
        raise Rejected("1-bit pixel data cannot be cleaned")
    transfer_syntax = ds.file_meta.TransferSyntaxUID
    try:
        with quiet():
            array = ds.pixel_array.copy()
    except Exception as exc:  # decoders raise many kinds; all mean "cannot clean"
        raise Rejected(f"pixel data cannot be decoded to clean it ({exc})") from exc
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    view: Any = array if frames > 1 else array[np.newaxis, ...]
    rows, columns = view.shape[1], view.shape[2]
    keep_mask = np.zeros((rows, columns), dtype=bool)
    for region in regions:
        if region is None:
            view[...] = 0
            continue
        x, y, width, height = region
        if keep:
            keep_mask[max(y, 0) : y + height, max(x, 0) : x + width] = True
        else:
            view[:, max(y, 0) : y + height, max(x, 0) : x + width, ...] = 0
    if keep:
        view[:, ~keep_mask, ...] = 0
    if transfer_syntax == RLELossless:
        ds.compress(RLELossless, array, encoding_plugin="pydicom")
    else:
        ds.PixelData = array.tobytes()
        if transfer_syntax not in _UNCOMPRESSED:
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            if "YBR" in str(ds.get("PhotometricInterpretation", "")) and array.ndim >= 3:
                ds.PhotometricInterpretation = "RGB"
            if int(ds.get("SamplesPerPixel", 1) or 1) > 1:
                ds.PlanarConfiguration = 0
            ds["PixelData"].VR = "OW" if int(ds.BitsAllocated) > 8 else "OB"
            ds["PixelData"].is_undefined_length = False
    ds.BurnedInAnnotation = "NO"

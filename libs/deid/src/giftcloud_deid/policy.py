"""What a profile does to one attribute: the rule the engine applies and the hub checks.

The engine (:mod:`giftcloud_deid.engine`) asks a :class:`Policy` what to do with each
element it meets; the hub's audit (:mod:`giftcloud_deid.conformance`) asks the same
policy what it must find there. One rule, in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from giftcloud_dicom.raw import Element, Reader

from giftcloud_deid.profile import ExtraRule, Profile
from giftcloud_deid.rules import CLEAN, EMPTY, KEEP, REMOVE, ActionMap, Option, compile_actions

TEXT_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT", "UR"})
FREE_TEXT_VRS = frozenset({"LO", "LT", "PN", "SH", "ST", "UC", "UT"})
NUMBER_VRS = frozenset({"US", "SS", "UL", "SL", "FL", "FD"})
#: the value a D (dummy) action writes, by VR
DUMMIES: dict[str, str | int | float] = {
    "PN": "ANONYMIZED",
    "LO": "ANONYMIZED",
    "SH": "ANONYMIZED",
    "LT": "ANONYMIZED",
    "ST": "ANONYMIZED",
    "UT": "ANONYMIZED",
    "UC": "ANONYMIZED",
    "CS": "ANONYMIZED",
    "AE": "ANONYMIZED",
    "DA": "19000101",
    "DT": "19000101000000",
    "TM": "000000",
    "AS": "000Y",
    "IS": "0",
    "DS": "0",
    "US": 0,
    "SS": 0,
    "UL": 0,
    "SL": 0,
    "FL": 0.0,
    "FD": 0.0,
}
#: a project's simple attribute rules as table actions ("replace" and "hash": "extra")
_EXTRA_ACTIONS = {"keep": KEEP, "remove": REMOVE, "empty": EMPTY}
EXTRA = "extra"

_CACHE: dict[frozenset[Option], ActionMap] = {}


def action_map(options: frozenset[Option]) -> ActionMap:
    """The table's actions under a set of options (compiled once per set)."""
    found = _CACHE.get(options)
    if found is None:
        found = _CACHE[options] = compile_actions(options)
    return found


@dataclass(frozen=True)
class Policy:
    """The actions of one profile for one SOP class, and which private attributes are safe."""

    options: frozenset[Option]
    rules: dict[int, ExtraRule]
    actions: dict[int, str]
    action_map: ActionMap
    #: (private creator upper-cased, group, element byte) kept; empty: every private removed
    safe_private: frozenset[tuple[str, int, int]]

    @classmethod
    def of(
        cls,
        profile: Profile,
        sop_class: str,
        safe_private: frozenset[tuple[str, int, int]],
        options: frozenset[Option] | None = None,
    ) -> Policy:
        """``options`` replaces the profile's own (the hub judges by what a file declares)."""
        chosen = profile.options if options is None else options
        actions = action_map(chosen)
        safe = safe_private if actions.private == CLEAN else frozenset()
        return cls(chosen, profile.rules, actions.for_sop_class(sop_class), actions, safe)

    def action(self, tag: int, creators: dict[int, str]) -> str:
        """The simple action for one element (``creators``: its dataset's private creators)."""
        group = tag >> 16
        extra = self.rules.get(tag)
        if extra is not None:
            return _EXTRA_ACTIONS.get(extra.action, EXTRA)
        if group & 1:
            return self._private(tag, creators) if group > 0x0008 else REMOVE
        if group in (0x0000, 0x0002, 0x0006):
            return REMOVE  # command, file meta or an illegal group inside the dataset
        action = self.actions.get(tag)
        if action is not None:
            return action
        if group & 0xFF00 in (0x5000, 0x6000):
            if tag & 0xFF00FFFF == 0x60003000:
                return REMOVE  # overlay bitmaps may carry text no rule can clean: always removed
            # curves and overlays: the whole group goes with its data, comments as the table says
            return self.action_map.repeating_action(tag) or REMOVE
        if tag & 0xFFFF == 0:
            return REMOVE  # group lengths would be wrong after any change
        return KEEP

    def _private(self, tag: int, creators: dict[int, str]) -> str:
        if not self.safe_private:
            return REMOVE
        group, element = tag >> 16, tag & 0xFFFF
        if element < 0x0100:
            creator = creators.get(tag, "")
            reserved = any(c == creator and g == group for c, g, _ in self.safe_private)
            return KEEP if element >= 0x10 and reserved else REMOVE
        creator = creators.get((group << 16) | (element >> 8), "")
        return KEEP if (creator, group, element & 0xFF) in self.safe_private else REMOVE

    def creators(self, reader: Reader, elements: list[Element]) -> dict[int, str]:
        """The private creators of one dataset (only read where private data may be kept)."""
        if not self.safe_private:
            return {}
        return {
            e.tag: (reader.text(e) or [""])[0].upper()
            for e in elements
            if (e.tag >> 16) & 1 and 0x10 <= e.tag & 0xFFFF <= 0xFF
        }

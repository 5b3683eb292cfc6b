"""The hub's audit: does a file's content match the profile it declares?

A hub holds no keys and never sees an original, so it cannot search a file for the
patient's identifiers. What it can judge is whether every attribute is what the declared
profile leaves behind: the profile named by DeidentificationMethodCodeSequence (CID 7050),
applied through the same :class:`~giftcloud_deid.policy.Policy` the engine uses, at
every depth. An attribute the profile removes is absent; one it empties is empty; one it
replaces holds the engine's dummy or a replaced UID (``2.25.``); dates are removed unless
a date option is declared; PatientName and PatientID are the same subject label of the
engine's form; private data only where Retain Safe Private is declared, and then only
the safe attributes. The declared options must be ones the hub's project accepts (its
profile's options): a site cannot widen what the hub takes by declaring more.

What no audit can check without the original: that shifted dates were shifted and that
text the profile cleans (descriptions under Clean Descriptors) was cleaned. Those are the
site engine's word, recorded in DeidentificationMethod (its key id and profile).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator

from giftcloud_dicom.part10 import DEFAULT_MAX_INFLATED, open_part10, undeflate
from giftcloud_dicom.raw import UNDEFINED, Element, Malformed, Reader, Syntax, dictionary_vr
from giftcloud_dicom.uid import uid_problem
from pydicom.datadict import keyword_for_tag

from giftcloud_deid.descriptors import unvouched
from giftcloud_deid.keys import SUBJECT_LABEL
from giftcloud_deid.policy import DUMMIES, EXTRA, NUMBER_VRS, TEXT_VRS, Policy
from giftcloud_deid.profile import DEFAULT_PROFILE, Profile
from giftcloud_deid.rewrite import cap_age, well_known_uid
from giftcloud_deid.rules import (
    BASIC_CODE,
    CLEAN,
    DUMMY,
    EMPTY,
    KEEP,
    OPTION_CODES,
    REMOVE,
    Option,
    descriptor_tags,
    load_table,
)
from giftcloud_deid.rules import UID as NEW_UID
from giftcloud_deid.tags import (
    IDENTITY_REMOVED,
    METHOD,
    METHOD_CODES,
    PATIENT_ID,
    PATIENT_NAME,
    SET_BY_ENGINE,
    SOP_CLASS,
    TEMPORAL_MODIFIED,
)

_OPTION_BY_CODE = {code: option for option, (code, _) in OPTION_CODES.items()}
#: the engine adds Clean Pixel Data where a burned-in rule masked an image: it narrows
_ALWAYS_ACCEPTED = frozenset({Option.CLEAN_PIXEL_DATA})
_DATE_VRS = frozenset({"DA", "DT", "TM"})
_HASHED = re.compile(r"[0-9a-f]{16}")
_REQUIRED_UIDS = {
    0x00080016: "SOPClassUID",
    0x00080018: "SOPInstanceUID",
    0x0020000D: "StudyInstanceUID",
    0x0020000E: "SeriesInstanceUID",
}
_SHOWN = 12  # problems named in a refusal; the rest are counted


def audit(
    data: bytes,
    *,
    accepted: Profile = DEFAULT_PROFILE,
    max_inflated: int = DEFAULT_MAX_INFLATED,
) -> list[str]:
    """Every way ``data`` departs from the profile it declares (empty: it conforms).

    ``accepted`` is the receiving project's profile: its options bound the options a file
    may declare, and its own attribute rules (keep, replace, hash) are accepted as such.
    """
    try:
        part = open_part10(undeflate(data, max_inflated=max_inflated))
        reader = Reader(part.buf)
        top = reader.elements(part.start, len(part.buf), part.syntax)
        return _Audit(reader, part.syntax, accepted).run(top)
    except (Malformed, struct.error, IndexError, RecursionError, ValueError) as exc:
        return [f"not a readable DICOM Part 10 file: {exc}"]


def summarise(problems: list[str]) -> str:
    """The problems as one refusal reason: the first few named, the rest counted."""
    shown = "; ".join(problems[:_SHOWN])
    more = len(problems) - _SHOWN
    return f"{shown}; and {more} more" if more > 0 else shown


def _name(tag: int, path: str) -> str:
    keyword = keyword_for_tag(tag) or ("private attribute" if (tag >> 16) & 1 else "attribute")
    return f"{path}({tag >> 16:04X},{tag & 0xFFFF:04X}) {keyword}"


class _Audit:
    def __init__(self, reader: Reader, syntax: Syntax, accepted: Profile) -> None:
        self.reader = reader
        self.syntax = syntax
        self.accepted = accepted
        self.problems: list[str] = []

    def text(self, element: Element | None) -> list[str]:
        if element is None or element.vr == "SQ":
            return []
        return [v for v in self.reader.text(element) if v.strip()]

    def run(self, top: list[Element]) -> list[str]:
        by_tag = {e.tag: e for e in top}
        for tag, keyword in _REQUIRED_UIDS.items():
            uid = (self.text(by_tag.get(tag)) or [""])[0]
            problem = uid_problem(uid)
            if problem is not None:  # these UIDs name the instance's place in the archive
                self.problems.append(f"{keyword} {uid[:80]!r} is not a valid UID: {problem}")
        options = self.declared(by_tag)
        if options is None:
            return self.problems
        self.subject_label(by_tag)
        sop_class = (self.text(by_tag.get(SOP_CLASS)) or [""])[0]
        policy = Policy.of(self.accepted, sop_class, load_table().safe_private, options)
        self.dataset(top, policy, self.syntax, "", top_level=True)
        return self.problems

    def declared(self, by_tag: dict[int, Element]) -> frozenset[Option] | None:
        """The options the file declares, or None (with the reason) when it declares none."""
        if [v.upper() for v in self.text(by_tag.get(IDENTITY_REMOVED))] != ["YES"]:
            self.problems.append("PatientIdentityRemoved is not YES")
        if not self.text(by_tag.get(METHOD)):
            self.problems.append("no DeidentificationMethod")
        codes = [
            (self.text(item.get(0x00080100)) or [""])[0]
            for item in self.items(by_tag.get(METHOD_CODES))
        ]
        if BASIC_CODE[0] not in codes:
            self.problems.append(
                "DeidentificationMethodCodeSequence does not declare the Basic Application "
                f"Confidentiality Profile ({BASIC_CODE[0]}): the profile applied is unknown"
            )
            return None
        unknown = [c for c in codes if c != BASIC_CODE[0] and c not in _OPTION_BY_CODE]
        if unknown:
            self.problems.append(f"DeidentificationMethodCodeSequence: unknown code(s) {unknown}")
        options = frozenset(_OPTION_BY_CODE[c] for c in codes if c in _OPTION_BY_CODE)
        wider = sorted(options - self.accepted.options - _ALWAYS_ACCEPTED)
        if wider:
            accepted = ", ".join(sorted(o.value for o in self.accepted.options)) or "none"
            self.problems.append(
                f"declares option(s) {', '.join(o.value for o in wider)} that this project "
                f"does not accept (its profile {self.accepted.name!r} accepts: {accepted})"
            )
            return None
        if Option.RETAIN_FULL_DATES in options:
            temporal = "UNMODIFIED"
        elif Option.RETAIN_MODIFIED_DATES in options:
            temporal = "MODIFIED"
        else:
            temporal = "REMOVED"
        found = self.text(by_tag.get(TEMPORAL_MODIFIED))
        if found and found[0].upper() != temporal:
            self.problems.append(
                f"LongitudinalTemporalInformationModified is {found[0]!r} where the declared "
                f"profile makes it {temporal!r}"
            )
        return options

    def subject_label(self, by_tag: dict[int, Element]) -> None:
        name = self.text(by_tag.get(PATIENT_NAME))
        patient_id = self.text(by_tag.get(PATIENT_ID))
        for tag, values in ((PATIENT_NAME, name), (PATIENT_ID, patient_id)):
            if len(values) != 1 or not SUBJECT_LABEL.fullmatch(values[0].strip()):
                self.problems.append(
                    f"{_name(tag, '')} is not a subject label (SUBJ- and 12 base32 characters)"
                )
        if name != patient_id:
            self.problems.append("PatientName is not the subject label of PatientID")

    def items(self, element: Element | None) -> Iterator[dict[int, Element]]:
        for members, _ in self.item_elements(element, self.syntax):
            yield {e.tag: e for e in members}

    def item_elements(
        self, element: Element | None, syntax: Syntax
    ) -> Iterator[tuple[list[Element], Syntax]]:
        """The items of a sequence (an element the caller knows is one)."""
        if element is None or element.length == 0:
            return
        if element.vr == "UN" and not element.implicit_items:
            return
        inner = Syntax(True, True) if element.implicit_items else syntax
        undefined = element.length == UNDEFINED
        for start, stop, _ in self.reader.items(
            element.value, element.end, inner, undefined=undefined
        ):
            yield self.reader.elements(start, stop, inner), inner

    def dataset(
        self,
        elements: list[Element],
        policy: Policy,
        syntax: Syntax,
        path: str,
        *,
        top_level: bool = False,
    ) -> None:
        creators = policy.creators(self.reader, elements)
        for element in elements:
            tag = element.tag
            if top_level and tag in SET_BY_ENGINE:
                continue  # the engine's own stamp, judged above
            action = policy.action(tag, creators)
            vr = element.vr
            if vr == "UN" and not (tag >> 16) & 1:
                vr = dictionary_vr(tag)
            problem = self.element(element, vr, action, policy, syntax)
            if problem:
                self.problems.append(f"{_name(tag, path)} {problem}")
            elif action in (KEEP, NEW_UID, CLEAN) and vr == "SQ":
                where = f"{path}({tag >> 16:04X},{tag & 0xFFFF:04X})"
                for index, (members, inner) in enumerate(self.item_elements(element, syntax)):
                    self.dataset(members, policy, inner, f"{where}[{index}] > ")

    def element(
        self, element: Element, vr: str, action: str, policy: Policy, syntax: Syntax
    ) -> str:
        """Why the element is not what ``action`` leaves behind (empty: it is)."""
        if action == KEEP:
            return ""
        if action == REMOVE:
            return "is present: the declared profile removes it"
        if vr == "SQ":
            if action in (EMPTY, DUMMY, EXTRA) and any(
                True for _ in self.item_elements(element, syntax)
            ):
                return "has items: the declared profile empties it"
            return ""
        values = self.values(element, vr, syntax)
        if action == EMPTY:
            return "has a value: the declared profile empties it" if values else ""
        if vr == "UI" and action in (DUMMY, NEW_UID, CLEAN):
            if any(not (v.startswith("2.25.") or well_known_uid(v)) for v in values):
                return "holds a UID that is not a replaced one (2.25.…)"
            return ""
        if action in (DUMMY, NEW_UID):
            dummy = str(DUMMIES.get(vr, ""))
            if any(not _same(v, dummy, vr) for v in values):
                return "holds a value that is not the declared profile's dummy"
            return ""
        if action == EXTRA:
            rule = policy.rules[element.tag]
            if rule.action == "replace" and any(v != rule.value for v in values):
                return f"is not the project's replacement {rule.value!r}"
            if rule.action == "hash" and any(not _HASHED.fullmatch(v) for v in values):
                return "is not a hashed value"
            return ""
        # CLEAN
        if vr in _DATE_VRS:
            dated = policy.options & {Option.RETAIN_MODIFIED_DATES, Option.RETAIN_FULL_DATES}
            if values and not dated:
                return "has a date or time: the declared profile removes them"
            return ""
        if vr == "AS":
            capped = any(cap_age(v) != v for v in values)
            return "is an age over 89 years (capped at 090Y)" if capped else ""
        if vr in TEXT_VRS:
            # a cleaned description holds no date, long number or titled name; the rest
            # is the site engine's word (see the module's docstring)
            if element.tag in descriptor_tags() and any(unvouched(v) for v in values):
                return "holds a date, an ID or a titled name: Clean Descriptors takes them out"
            return ""
        return "has a value: the declared profile empties it" if values else ""

    def values(self, element: Element, vr: str, syntax: Syntax) -> list[str]:
        if vr in NUMBER_VRS:
            return [str(n) for n in self.reader.number(element, syntax)]
        if vr in TEXT_VRS or vr in ("DA", "DT", "TM", "AS", "IS", "DS", "UI", "PN"):
            return [v.strip() for v in self.reader.text(element) if v.strip()]
        return ["(binary)"] if element.length not in (0, UNDEFINED) else []


def _same(value: str, dummy: str, vr: str) -> bool:
    if vr in NUMBER_VRS or vr in ("IS", "DS"):
        try:
            return float(value) == float(dummy or 0)
        except ValueError:
            return False
    return value.strip() == dummy

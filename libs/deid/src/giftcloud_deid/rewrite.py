"""The rewrite, element by element and item by item: each attribute's action under the
profile applied to its value, nested sequences walked to any depth."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache

from giftcloud_dicom.encode import element_bytes, header, sequence_bytes
from giftcloud_dicom.raw import UNDEFINED, Element, Reader, Syntax, dictionary_vr
from pydicom._uid_dict import UID_dictionary  # the registry of PS3.6 Table A-1
from pydicom.datadict import keyword_for_tag

from giftcloud_deid.descriptors import DescriptorCleaner
from giftcloud_deid.keys import ProjectKeys
from giftcloud_deid.policy import (
    DUMMIES,
    EXTRA,
    FREE_TEXT_VRS,
    NUMBER_VRS,
    TEXT_VRS,
    Policy,
)
from giftcloud_deid.profile import Profile
from giftcloud_deid.rules import (
    CLEAN,
    DUMMY,
    EMPTY,
    KEEP,
    REMOVE,
    Option,
    descriptor_tags,
)
from giftcloud_deid.rules import UID as NEW_UID
from giftcloud_deid.tags import SET_BY_ENGINE
from giftcloud_deid.verify import Identity


@lru_cache(maxsize=8192)
@dataclass(frozen=True)
class Change:
    """What the profile does (or would do, in a dry run) to one attribute; never its value."""

    path: str
    keyword: str
    action: str


def well_known_uid(uid: str) -> bool:
    """Defined by the standard (DICOM root) or registered (coding schemes, frames of reference)."""
    return uid.startswith("1.2.840.10008.") or uid in UID_dictionary


@dataclass
class Run:
    """The state of one instance's de-identification."""

    reader: Reader
    syntax: Syntax
    keys: ProjectKeys
    profile: Profile
    policy: Policy
    subject: str
    shift: timedelta
    identity: Identity
    dry_run: bool
    changes: list[Change] = field(default_factory=list)
    cleaner: DescriptorCleaner | None = None

    def uid(self, value: str) -> str:
        if not value or well_known_uid(value):
            return value
        self.identity.uids.add(value)
        return self.keys.uid(value)

    def shift_date(self, value: str) -> str:
        try:
            parsed = datetime.strptime(value.strip()[:8], "%Y%m%d").date()
        except ValueError:
            return ""
        return (parsed + self.shift).strftime("%Y%m%d")

    def shift_datetime(self, value: str) -> str:
        value = value.strip()
        shifted = self.shift_date(value[:8])
        return shifted + value[8:] if shifted else ""

    def scrub(self, text: str, *, descriptor: bool = True) -> str:
        """Free text with every identifier of the input out (and, in a ``descriptor``, what no
        one can vouch for: :mod:`giftcloud_deid.descriptors`)."""
        if self.cleaner is None:
            self.cleaner = DescriptorCleaner(self.identity)
        return self.cleaner(text, descriptor=descriptor)


def hash_of(keys: ProjectKeys, value: str) -> str:
    return hmac.new(keys.secret, b"attr\x00" + value.encode(), hashlib.sha256).hexdigest()[:16]


def rewrite_dataset(
    elements: list[Element],
    run: Run,
    syntax: Syntax,
    path: str,
    *,
    top_level: bool = False,
    cleaning: bool = False,
) -> tuple[bool, dict[int, bytes]]:
    """The elements after the profile, by tag; and whether anything changed.

    ``cleaning``: inside a sequence the profile cleans (C), where free text the table
    does not name (an SR TextValue, a graphic's text) is cleaned too.
    """
    buf = run.reader.buf
    out: dict[int, bytes] = {}
    changed = False
    creators = run.policy.creators(run.reader, elements)
    for element in elements:
        tag = element.tag
        if top_level and tag in SET_BY_ENGINE:
            changed = True
            continue
        action = run.policy.action(tag, creators)
        vr = element.vr
        if vr == "UN" and not (tag >> 16) & 1:
            vr = dictionary_vr(tag)
        if action == KEEP and vr != "SQ":
            if cleaning and vr in FREE_TEXT_VRS:
                values = run.reader.text(element)
                scrubbed = [run.scrub(v) for v in values]
                if scrubbed != values:
                    out[tag] = element_bytes(tag, vr, scrubbed, syntax)
                    changed = True
                    continue
            out[tag] = bytes(buf[element.start : element.end])
            continue
        where = f"{path}({tag >> 16:04X},{tag & 0xFFFF:04X})"
        if action != KEEP:
            run.changes.append(Change(where, keyword_for_tag(tag) or "private", action))
            changed = True
        if vr in TEXT_VRS and action in (REMOVE, EMPTY, DUMMY) and not (tag >> 16) & 1:
            run.identity.note_removed(run.reader.text(element))
        if action == REMOVE:
            continue
        if vr == "SQ":
            encoded = rewrite_sequence(element, action, run, syntax, where, cleaning)
            if encoded is None:
                out[tag] = bytes(buf[element.start : element.end])
            else:
                out[tag] = encoded
                changed = True
            continue
        if run.dry_run:
            continue
        out[tag] = rewrite_value(element, vr, action, run, syntax)
    return changed, out


def rewrite_sequence(
    element: Element, action: str, run: Run, syntax: Syntax, where: str, cleaning: bool
) -> bytes | None:
    """The sequence re-encoded after the profile, or None when it is unchanged."""
    if action in (EMPTY, DUMMY):
        return header(element.tag, "SQ", 0, syntax)
    if action == EXTRA:  # a value rule on a sequence: nothing to hash or replace in it
        return header(element.tag, "SQ", 0, syntax)
    inner = Syntax(True, True) if element.implicit_items else syntax
    undefined = element.length == UNDEFINED
    items: list[bytes] = []
    changed = False
    for index, (start, stop, _) in enumerate(
        run.reader.items(element.value, element.end, inner, undefined=undefined)
    ):
        members = run.reader.elements(start, stop, inner)
        item_changed, chunks = rewrite_dataset(
            members, run, inner, f"{where}[{index}]", cleaning=cleaning or action == CLEAN
        )
        changed = changed or item_changed
        items.append(b"".join(chunks[t] for t in sorted(chunks)))
    if not changed:
        return None
    return sequence_bytes(element.tag, items, syntax, as_un=element.implicit_items)


def rewrite_value(element: Element, vr: str, action: str, run: Run, syntax: Syntax) -> bytes:
    tag = element.tag
    values = run.reader.text(element) if vr not in NUMBER_VRS else []
    if action == EXTRA:
        rule = run.profile.rules[tag]
        if rule.action == "replace":
            return element_bytes(tag, vr, rule.value, syntax)
        return element_bytes(tag, vr, [hash_of(run.keys, v) for v in values], syntax)
    if action == EMPTY:
        return element_bytes(tag, vr, None, syntax)
    if vr == "UI" and action in (DUMMY, NEW_UID, CLEAN):
        return element_bytes(tag, vr, [run.uid(v) for v in values], syntax)
    if action in (DUMMY, NEW_UID):
        return element_bytes(tag, vr, DUMMIES.get(vr), syntax)
    # CLEAN
    options = run.profile.options
    modified = Option.RETAIN_MODIFIED_DATES in options
    if vr == "DA":
        new = [run.shift_date(v) for v in values] if modified else []
    elif vr == "DT":
        new = [run.shift_datetime(v) for v in values] if modified else []
    elif vr == "TM":
        new = values if modified else []
    elif vr == "AS":
        new = [cap_age(v) for v in values]
    elif vr in TEXT_VRS:
        descriptor = tag in descriptor_tags()
        new = [run.scrub(v, descriptor=descriptor) for v in values]
    else:
        return element_bytes(tag, vr, None, syntax)  # nothing to clean in it: emptied
    return element_bytes(tag, vr, new or None, syntax)


def cap_age(age: str) -> str:
    """Ages over 89 years are reported as 090Y (HIPAA safe harbour)."""
    age = age.strip()
    if age.endswith("Y") and age[:-1].isdigit() and int(age[:-1]) > 89:
        return "090Y"
    return age

"""The PS3.15 Annex E de-identifier: one pass over the raw bytes, touching only what the table names.

Every element the profile keeps is copied byte for byte from the input; only the
elements an action applies to are decoded and encoded again. Sequences are opened to
apply the profile inside them and copied whole when nothing in them changes. Pixel data
is never decoded unless a burned-in text rule fires.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache

import pydicom
from pydicom._uid_dict import UID_dictionary  # the registry of PS3.6 Table A-1
from pydicom.datadict import keyword_for_tag, tag_for_keyword
from pydicom.errors import InvalidDicomError

from giftcloud_deid import pixels
from giftcloud_deid.errors import Rejected
from giftcloud_deid.keys import ProjectKeys
from giftcloud_deid.namespace import DEFAULT_NAMESPACE, PatientNamespace
from giftcloud_deid.policy import (
    DUMMIES,
    EXTRA,
    FREE_TEXT_VRS,
    NUMBER_VRS,
    TEXT_VRS,
    Policy,
    action_map,
)
from giftcloud_deid.profile import DEFAULT_PROFILE, Profile
from giftcloud_deid.quiet import quiet
from giftcloud_deid.raw import (
    DEFAULT_MAX_INFLATED,
    UNDEFINED,
    Element,
    Malformed,
    Part10,
    Reader,
    Syntax,
    dictionary_vr,
    element_bytes,
    file_meta,
    header,
    open_part10,
    sequence_bytes,
    undeflate,
)
from giftcloud_deid.rules import (
    BASIC_CODE,
    CLEAN,
    DUMMY,
    EMPTY,
    KEEP,
    OPTION_CODES,
    REMOVE,
    Option,
    load_table,
)
from giftcloud_deid.rules import UID as NEW_UID
from giftcloud_deid.uid import uid_problem
from giftcloud_deid.verify import Identity, verify

ENGINE_VERSION = "giftcloud-deid 1.0"
IMPLEMENTATION_VERSION = "GIFTCLOUD_1"

PATIENT_NAME = 0x00100010
PATIENT_ID = 0x00100020
PATIENT_AGE = 0x00101010
SOP_CLASS = 0x00080016
SOP_INSTANCE = 0x00080018
STUDY_UID = 0x0020000D
SERIES_UID = 0x0020000E
ISSUER = 0x00100021
ISSUER_QUALIFIERS = 0x00100024
LOCAL_NAMESPACE_ID = 0x00400031
UNIVERSAL_ENTITY_ID = 0x00400032
OTHER_PATIENT_IDS = 0x00101002
PIXEL_DATA = 0x7FE00010
IDENTITY_REMOVED = 0x00120062
METHOD = 0x00120063
METHOD_CODES = 0x00120064
TEMPORAL_MODIFIED = 0x00280303
SET_BY_ENGINE = {
    PATIENT_NAME,
    PATIENT_ID,
    IDENTITY_REMOVED,
    METHOD,
    METHOD_CODES,
    TEMPORAL_MODIFIED,
}
_NOT_SCANNED = SET_BY_ENGINE | {PIXEL_DATA}
_REQUIRED = {
    SOP_INSTANCE: "SOPInstanceUID",
    SOP_CLASS: "SOPClassUID",
    STUDY_UID: "StudyInstanceUID",
    SERIES_UID: "SeriesInstanceUID",
}


@dataclass(frozen=True)
class Change:
    """What the profile does (or would do, in a dry run) to one attribute; never its value."""

    path: str
    keyword: str
    action: str


@dataclass(frozen=True)
class DeidentifiedInstance:
    data: bytes
    subject: str
    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    identity: Identity
    changes: tuple[Change, ...] = ()
    pixels_cleaned: str = ""
    #: the patient namespace the subject was keyed in, and the settings' fingerprint
    namespace: str = ""
    namespace_id: str = ""


@dataclass(frozen=True)
class PatientKey:
    """Who the subject of a file is: (namespace, patient) after the namespace's aliases."""

    namespace: str
    patient: str
    #: the issuer values the file named (as written)
    issuers: tuple[str, ...]
    subject: str
    #: the patient was recognised by an ID of the site's namespace in OtherPatientIDsSequence
    from_other_ids: bool = False


@lru_cache(maxsize=8192)
def well_known_uid(uid: str) -> bool:
    """Defined by the standard (DICOM root) or registered (coding schemes, frames of reference)."""
    return uid.startswith("1.2.840.10008.") or uid in UID_dictionary


@dataclass
class _Run:
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
    scrubber: re.Pattern[str] | None = None

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

    def scrub(self, text: str) -> str:
        """Free text with every identifier of the input taken out."""
        if self.scrubber is None:
            self.scrubber = self.identity.pattern()
        return self.scrubber.sub("*", text) if self.scrubber.pattern else text


def _hash(keys: ProjectKeys, value: str) -> str:
    return hmac.new(keys.secret, b"attr\x00" + value.encode(), hashlib.sha256).hexdigest()[:16]


class Deidentifier:
    """De-identifies instances of one project with its keys and profile. Thread-safe."""

    def __init__(
        self,
        keys: ProjectKeys,
        profile: Profile = DEFAULT_PROFILE,
        *,
        verify_output: bool = True,
        burned_in: pixels.BurnedInRules | None = None,
        max_inflated: int = DEFAULT_MAX_INFLATED,
        namespace: PatientNamespace = DEFAULT_NAMESPACE,
    ) -> None:
        self.keys = keys
        #: the site's patient namespace; a project's profile may set its own
        self.namespace = profile.namespace or namespace
        #: the most a deflated input may inflate to: a deflate bomb is refused, not inflated
        self.max_inflated = max_inflated
        self.profile = profile
        self.verify_output = verify_output
        self.action_map = action_map(profile.options)
        self.burned_in = burned_in or pixels.BurnedInRules.default(profile.burned_in)

    def deidentify(self, data: bytes) -> DeidentifiedInstance:
        """De-identify one DICOM Part 10 file; :class:`Rejected` with a reason if it cannot be."""
        return self._checked(data, dry_run=self.profile.dry_run)

    def dry_run(self, data: bytes) -> tuple[Change, ...]:
        """What the profile would change in one file, without writing anything."""
        return self._checked(data, dry_run=True).changes

    def patient_key(self, data: bytes) -> PatientKey:
        """Who the file's subject would be, and why (nothing de-identified); :class:`Rejected`
        for a file the namespace refuses or that cannot be read."""
        try:
            part = open_part10(undeflate(data, max_inflated=self.max_inflated))
            reader = Reader(part.buf)
            by_tag = {e.tag: e for e in reader.elements(part.start, len(part.buf), part.syntax)}
            text = _text_of(reader, by_tag, part.syntax)
            identity = Identity.from_values(text)
            return self._patient(
                reader, by_tag, part.syntax, identity, (text(STUDY_UID) or [""])[0]
            )
        except (Malformed, struct.error, IndexError, RecursionError) as exc:
            raise Rejected(f"not a well-formed DICOM Part 10 file: {exc}") from exc

    def _patient(
        self,
        reader: Reader,
        by_tag: dict[int, Element],
        syntax: Syntax,
        identity: Identity,
        study: str,
    ) -> PatientKey:
        text = _text_of(reader, by_tag, syntax)
        issuers = (
            *text(ISSUER)[:1],
            *_qualifier_issuers(reader, by_tag.get(ISSUER_QUALIFIERS), syntax),
        )
        namespace = self.namespace.resolve(issuers)
        patient = identity.grouping_id(study)
        from_other = False
        site = self.namespace.site
        if self.namespace.use_other_patient_ids and namespace != site:
            for other_id, other_issuers in _other_ids(
                reader, by_tag.get(OTHER_PATIENT_IDS), syntax
            ):
                if other_id and self.namespace.known(other_issuers) == site:
                    namespace, patient, from_other = site, other_id, True
                    break
        subject = self.keys.subject(namespace, patient)
        return PatientKey(namespace, patient, tuple(issuers), subject, from_other)

    def _checked(self, data: bytes, *, dry_run: bool) -> DeidentifiedInstance:
        try:
            return self._run(undeflate(data, max_inflated=self.max_inflated), dry_run=dry_run)
        except (Malformed, struct.error, IndexError, RecursionError) as exc:  # broken structure
            raise Rejected(f"not a well-formed DICOM Part 10 file: {exc}") from exc

    def _run(self, data: bytes, *, dry_run: bool, masked: str = "") -> DeidentifiedInstance:
        part = open_part10(data)
        reader = Reader(part.buf)
        top = reader.elements(part.start, len(part.buf), part.syntax)
        by_tag = {e.tag: e for e in top}

        text = _text_of(reader, by_tag, part.syntax)
        missing = [name for tag, name in _REQUIRED.items() if not text(tag)]
        if missing:
            raise Rejected(f"missing required attribute(s): {', '.join(missing)}")
        sop_class = text(SOP_CLASS)[0]
        allowed = self.profile.sop_classes
        if allowed is not None and sop_class not in allowed:
            raise Rejected(f"SOP Class {sop_class} is not in this project's allow-list")
        identity = Identity.from_values(text)
        study = text(STUDY_UID)[0]
        patient = self._patient(reader, by_tag, part.syntax, identity, study)  # may refuse

        if PIXEL_DATA in by_tag and not masked and not dry_run:
            rule = burned_in_rule(self.burned_in, by_tag, text, part)
            if rule is not None:
                return self._run(self._mask(data, rule), dry_run=False, masked=rule.label)

        for tag, extra in self.profile.rules.items():
            if extra.action == "keep":  # the project keeps these on purpose
                for value in text(tag):
                    identity.identifiers.pop(value, None)
        subject = patient.subject
        run = _Run(
            reader=reader,
            syntax=part.syntax,
            keys=self.keys,
            profile=self.profile,
            policy=Policy.of(self.profile, sop_class, load_table().safe_private),
            subject=subject,
            shift=timedelta(days=self.keys.date_shift_days(subject)),
            identity=identity,
            dry_run=dry_run,
        )
        _, chunks = _dataset(top, run, part.syntax, "", top_level=True)
        ids = {
            tag: text(tag)[0] if run.policy.actions.get(tag) == KEEP else run.uid(text(tag)[0])
            for tag in (STUDY_UID, SERIES_UID, SOP_INSTANCE)
        }
        for tag, uid in (*ids.items(), (SOP_CLASS, sop_class)):
            problem = uid_problem(uid)
            if problem is not None:  # the output's UIDs name its place in the archive
                raise Rejected(f"{_REQUIRED[tag]} {uid[:80]!r} is not a valid UID: {problem}")
        namespace = (patient.namespace, self.namespace.fingerprint)
        if dry_run:
            return _result(b"", run, ids, sop_class, part.transfer_syntax, masked, namespace)
        self._stamp(chunks, run, text(PATIENT_AGE), bool(masked))
        body = b"".join(chunks[tag] for tag in sorted(chunks))
        output = (
            file_meta(sop_class, ids[SOP_INSTANCE], part.transfer_syntax, IMPLEMENTATION_VERSION)
            + body
        )
        if self.verify_output:
            # what came from the input: not the engine's own stamp, not the pixel data
            scanned = b"".join(chunks[tag] for tag in sorted(chunks) if tag not in _NOT_SCANNED)
            hits = verify(
                scanned, identity, dates=Option.RETAIN_FULL_DATES not in self.profile.options
            )
            if hits:
                raise Rejected(f"verification found identifiers in the output: {'; '.join(hits)}")
        return _result(output, run, ids, sop_class, part.transfer_syntax, masked, namespace)

    def _mask(self, data: bytes, rule: pixels.Rule) -> bytes:
        try:
            with quiet():
                ds = pydicom.dcmread(io.BytesIO(data))
                self.burned_in.apply(ds, rule)
                buffer = io.BytesIO()
                ds.save_as(buffer, enforce_file_format=True)
        except Rejected:
            raise
        except (InvalidDicomError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise Rejected(f"pixel data cannot be cleaned: {exc}") from exc
        return buffer.getvalue()

    def _stamp(
        self, chunks: dict[int, bytes], run: _Run, age: list[str], pixels_cleaned: bool
    ) -> None:
        syntax = run.syntax
        options = self.profile.options
        chunks[PATIENT_NAME] = element_bytes(PATIENT_NAME, "PN", run.subject, syntax)
        chunks[PATIENT_ID] = element_bytes(PATIENT_ID, "LO", run.subject, syntax)
        chunks[IDENTITY_REMOVED] = element_bytes(IDENTITY_REMOVED, "CS", "YES", syntax)
        method = [
            ENGINE_VERSION,
            self.profile.description[:64],
            f"key {self.keys.key_id}",
            f"patient namespace {self.namespace.fingerprint}",
        ]
        chunks[METHOD] = element_bytes(METHOD, "LO", method, syntax)
        codes = [BASIC_CODE]
        codes += [OPTION_CODES[o] for o in sorted(options) if o in OPTION_CODES]
        if pixels_cleaned and Option.CLEAN_PIXEL_DATA not in options:
            codes.append(OPTION_CODES[Option.CLEAN_PIXEL_DATA])
        items = [
            element_bytes(0x00080100, "SH", value, syntax)
            + element_bytes(0x00080102, "SH", "DCM", syntax)
            + element_bytes(0x00080104, "LO", meaning, syntax)
            for value, meaning in codes
        ]
        chunks[METHOD_CODES] = sequence_bytes(METHOD_CODES, items, syntax)
        if Option.RETAIN_FULL_DATES in options:
            temporal = "UNMODIFIED"
        elif Option.RETAIN_MODIFIED_DATES in options:
            temporal = "MODIFIED"
        else:
            temporal = "REMOVED"
        chunks[TEMPORAL_MODIFIED] = element_bytes(TEMPORAL_MODIFIED, "CS", temporal, syntax)
        if age and PATIENT_AGE in chunks:
            chunks[PATIENT_AGE] = element_bytes(PATIENT_AGE, "AS", cap_age(age[0]), syntax)


def _result(
    data: bytes,
    run: _Run,
    ids: dict[int, str],
    sop_class: str,
    transfer_syntax: str,
    cleaned: str,
    namespace: tuple[str, str],
) -> DeidentifiedInstance:
    return DeidentifiedInstance(
        data=data,
        subject=run.subject,
        study_uid=ids[STUDY_UID],
        series_uid=ids[SERIES_UID],
        sop_uid=ids[SOP_INSTANCE],
        sop_class_uid=sop_class,
        transfer_syntax_uid=transfer_syntax,
        identity=run.identity,
        changes=tuple(run.changes),
        pixels_cleaned=cleaned,
        namespace=namespace[0],
        namespace_id=namespace[1],
    )


def _dataset(
    elements: list[Element],
    run: _Run,
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
            encoded = _sequence(element, action, run, syntax, where, cleaning)
            if encoded is None:
                out[tag] = bytes(buf[element.start : element.end])
            else:
                out[tag] = encoded
                changed = True
            continue
        if run.dry_run:
            continue
        out[tag] = _value(element, vr, action, run, syntax)
    return changed, out


def _sequence(
    element: Element, action: str, run: _Run, syntax: Syntax, where: str, cleaning: bool
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
        item_changed, chunks = _dataset(
            members, run, inner, f"{where}[{index}]", cleaning=cleaning or action == CLEAN
        )
        changed = changed or item_changed
        items.append(b"".join(chunks[t] for t in sorted(chunks)))
    if not changed:
        return None
    return sequence_bytes(element.tag, items, syntax, as_un=element.implicit_items)


def _value(element: Element, vr: str, action: str, run: _Run, syntax: Syntax) -> bytes:
    tag = element.tag
    values = run.reader.text(element) if vr not in NUMBER_VRS else []
    if action == EXTRA:
        rule = run.profile.rules[tag]
        if rule.action == "replace":
            return element_bytes(tag, vr, rule.value, syntax)
        return element_bytes(tag, vr, [_hash(run.keys, v) for v in values], syntax)
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
        new = [run.scrub(v) for v in values]
    else:
        return element_bytes(tag, vr, None, syntax)  # nothing to clean in it: emptied
    return element_bytes(tag, vr, new or None, syntax)


def cap_age(age: str) -> str:
    """Ages over 89 years are reported as 090Y (HIPAA safe harbour)."""
    age = age.strip()
    if age.endswith("Y") and age[:-1].isdigit() and int(age[:-1]) > 89:
        return "090Y"
    return age


def deidentify(
    data: bytes, keys: ProjectKeys, profile: Profile = DEFAULT_PROFILE
) -> DeidentifiedInstance:
    """De-identify one file with a project's keys and a profile (default: the site default)."""
    return Deidentifier(keys, profile).deidentify(data)


def _text_of(
    reader: Reader, by_tag: dict[int, Element], syntax: Syntax
) -> Callable[[int], list[str]]:
    """The (top-level) values of a tag as strings."""

    def text(tag: int) -> list[str]:
        element = by_tag.get(tag)
        if element is None or element.vr == "SQ":
            return []
        if element.vr in NUMBER_VRS:
            return [str(n) for n in reader.number(element, syntax)]
        return reader.text(element)

    return text


def _items(reader: Reader, element: Element | None, syntax: Syntax) -> list[dict[int, Element]]:
    """The items of a sequence, each as its elements by tag (an empty list for no sequence)."""
    if element is None or element.vr not in ("SQ", "UN") or element.length == 0:
        return []
    if element.vr == "UN" and not element.implicit_items:
        return []
    inner = Syntax(True, True) if element.implicit_items else syntax
    undefined = element.length == UNDEFINED
    return [
        {e.tag: e for e in reader.elements(start, stop, inner)}
        for start, stop, _ in reader.items(element.value, element.end, inner, undefined=undefined)
    ]


def _qualifier_issuers(reader: Reader, element: Element | None, syntax: Syntax) -> list[str]:
    """UniversalEntityID and LocalNamespaceEntityID of IssuerOfPatientIDQualifiersSequence."""
    found = []
    for item in _items(reader, element, syntax):
        for tag in (UNIVERSAL_ENTITY_ID, LOCAL_NAMESPACE_ID):
            if tag in item:
                found += reader.text(item[tag])[:1]
    return found


def _other_ids(
    reader: Reader, element: Element | None, syntax: Syntax
) -> list[tuple[str, list[str]]]:
    """(PatientID, its issuer values) of each item of OtherPatientIDsSequence."""
    others = []
    for item in _items(reader, element, syntax):
        patient = reader.text(item[PATIENT_ID])[:1] if PATIENT_ID in item else []
        issuers = reader.text(item[ISSUER])[:1] if ISSUER in item else []
        issuers += _qualifier_issuers(reader, item.get(ISSUER_QUALIFIERS), syntax)
        others.append(((patient or [""])[0], issuers))
    return others


def burned_in_rule(
    rules: pixels.BurnedInRules,
    by_tag: dict[int, Element],
    text: Callable[[int], list[str]],
    part: Part10,
) -> pixels.Rule | None:
    """The region rule that cleans the image, None if it may pass as it is; :class:`Rejected`
    for an image that may carry burned-in text that no rule covers. Decided from the header."""

    def fields(name: str) -> str | None:
        tag = tag_for_keyword(name)
        if tag is None:
            return None
        if tag >> 16 == 2:
            return part.meta.get(tag)
        if tag not in by_tag:
            return None
        return "\\".join(text(tag))

    return rules.needs_cleaning(fields)


class Admission:
    """What a project's profile decides from a file's header alone, before anything of it is
    kept: a SOP class outside the allow-list, an issuer the patient namespace refuses, an
    image that may carry burned-in text that no rule covers. Needs no keys (ingest runs it
    at STOW time, so a 200 means the instance will be archived unless its pixels or the
    verifier say otherwise)."""

    def __init__(
        self,
        profile: Profile = DEFAULT_PROFILE,
        namespace: PatientNamespace = DEFAULT_NAMESPACE,
        max_inflated: int = DEFAULT_MAX_INFLATED,
    ) -> None:
        self.profile = profile
        self.namespace = profile.namespace or namespace
        self.burned_in = pixels.BurnedInRules.default(profile.burned_in)
        self.max_inflated = max_inflated

    def check(self, data: bytes) -> None:
        """None when the file may come in; :class:`Rejected` with the reason otherwise."""
        try:
            part = open_part10(undeflate(data, max_inflated=self.max_inflated))
            reader = Reader(part.buf)
            by_tag = {e.tag: e for e in reader.elements(part.start, len(part.buf), part.syntax)}
            text = _text_of(reader, by_tag, part.syntax)
            sop_class = (text(SOP_CLASS) or [""])[0]
            allowed = self.profile.sop_classes
            if allowed is not None and sop_class not in allowed:
                raise Rejected(f"SOP Class {sop_class} is not in this project's allow-list")
            issuers = (
                *text(ISSUER)[:1],
                *_qualifier_issuers(reader, by_tag.get(ISSUER_QUALIFIERS), part.syntax),
            )
            self.namespace.resolve(issuers)
            if PIXEL_DATA in by_tag:
                burned_in_rule(self.burned_in, by_tag, text, part)
        except (Malformed, struct.error, IndexError, RecursionError) as exc:
            raise Rejected(f"not a well-formed DICOM Part 10 file: {exc}") from exc

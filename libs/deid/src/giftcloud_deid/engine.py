"""The PS3.15 Annex E de-identifier: one pass over the raw bytes, touching only what the table names.

Every element the profile keeps is copied byte for byte from the input; only the
elements an action applies to are decoded and encoded again. Sequences are opened to
apply the profile inside them and copied whole when nothing in them changes. Pixel data
is never decoded unless a burned-in text rule fires.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from datetime import timedelta

import pydicom
from giftcloud_dicom.encode import element_bytes, file_meta, sequence_bytes
from giftcloud_dicom.part10 import DEFAULT_MAX_INFLATED, open_part10, undeflate
from giftcloud_dicom.quiet import quiet
from giftcloud_dicom.raw import Element, Malformed, Reader, Syntax
from giftcloud_dicom.uid import uid_problem
from pydicom.errors import InvalidDicomError

from giftcloud_deid import pixels
from giftcloud_deid.admission import burned_in_rule, check_sop_class
from giftcloud_deid.errors import Rejected
from giftcloud_deid.identity import other_ids, qualifier_issuers, text_of
from giftcloud_deid.keys import ProjectKeys
from giftcloud_deid.namespace import DEFAULT_NAMESPACE, PatientNamespace
from giftcloud_deid.policy import (
    Policy,
    action_map,
)
from giftcloud_deid.profile import DEFAULT_PROFILE, Profile
from giftcloud_deid.rewrite import Change, Run, cap_age, rewrite_dataset
from giftcloud_deid.rules import (
    BASIC_CODE,
    KEEP,
    OPTION_CODES,
    Option,
    load_table,
)
from giftcloud_deid.tags import (
    IDENTITY_REMOVED,
    ISSUER,
    ISSUER_QUALIFIERS,
    METHOD,
    METHOD_CODES,
    NOT_SCANNED,
    OTHER_PATIENT_IDS,
    PATIENT_AGE,
    PATIENT_ID,
    PATIENT_NAME,
    PIXEL_DATA,
    REQUIRED,
    SERIES_UID,
    SOP_CLASS,
    SOP_INSTANCE,
    STUDY_UID,
    TEMPORAL_MODIFIED,
)
from giftcloud_deid.verify import Identity, verify

ENGINE_VERSION = "giftcloud-deid 1.0"


IMPLEMENTATION_VERSION = "GIFTCLOUD_1"


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
        self.burned_in = burned_in or pixels.BurnedInRules.default(
            profile.burned_in, profile.attested
        )

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
            text = text_of(reader, by_tag, part.syntax)
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
        text = text_of(reader, by_tag, syntax)
        issuers = (
            *text(ISSUER)[:1],
            *qualifier_issuers(reader, by_tag.get(ISSUER_QUALIFIERS), syntax),
        )
        namespace = self.namespace.resolve(issuers)
        patient = identity.grouping_id(study)
        from_other = False
        site = self.namespace.site
        if self.namespace.use_other_patient_ids and namespace != site:
            for other_id, other_issuers in other_ids(reader, by_tag.get(OTHER_PATIENT_IDS), syntax):
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

        text = text_of(reader, by_tag, part.syntax)
        missing = [name for tag, name in REQUIRED.items() if not text(tag)]
        if missing:
            raise Rejected(f"missing required attribute(s): {', '.join(missing)}")
        sop_class = text(SOP_CLASS)[0]
        check_sop_class(self.profile, sop_class)
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
        run = Run(
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
        _, chunks = rewrite_dataset(top, run, part.syntax, "", top_level=True)
        ids = {
            tag: text(tag)[0] if run.policy.actions.get(tag) == KEEP else run.uid(text(tag)[0])
            for tag in (STUDY_UID, SERIES_UID, SOP_INSTANCE)
        }
        for tag, uid in (*ids.items(), (SOP_CLASS, sop_class)):
            problem = uid_problem(uid)
            if problem is not None:  # the output's UIDs name its place in the archive
                raise Rejected(f"{REQUIRED[tag]} {uid[:80]!r} is not a valid UID: {problem}")
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
            scanned = b"".join(chunks[tag] for tag in sorted(chunks) if tag not in NOT_SCANNED)
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
        self, chunks: dict[int, bytes], run: Run, age: list[str], pixels_cleaned: bool
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
    run: Run,
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


def deidentify(
    data: bytes, keys: ProjectKeys, profile: Profile = DEFAULT_PROFILE
) -> DeidentifiedInstance:
    """De-identify one file with a project's keys and a profile (default: the site default)."""
    return Deidentifier(keys, profile).deidentify(data)

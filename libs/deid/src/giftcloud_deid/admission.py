"""What a site can decide from a header as a file arrives, before it is accepted: the
SOP class allow-list, the patient namespace, whether a burned-in text rule covers it."""

from __future__ import annotations

import struct
from collections.abc import Callable

from giftcloud_dicom.part10 import DEFAULT_MAX_INFLATED, Part10, open_part10, undeflate
from giftcloud_dicom.raw import Element, Malformed, Reader
from pydicom.datadict import tag_for_keyword

from giftcloud_deid import pixels
from giftcloud_deid.errors import Rejected
from giftcloud_deid.identity import qualifier_issuers, text_of
from giftcloud_deid.namespace import DEFAULT_NAMESPACE, PatientNamespace
from giftcloud_deid.profile import DEFAULT_PROFILE, Profile
from giftcloud_deid.tags import ISSUER, ISSUER_QUALIFIERS, PIXEL_DATA, SOP_CLASS


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


def check_sop_class(profile: Profile, sop_class: str) -> None:
    """:class:`Rejected` for a SOP class outside the project's allow-list (if it has one)."""
    allowed = profile.sop_classes
    if allowed is not None and sop_class not in allowed:
        raise Rejected(f"SOP Class not in this project's allow-list: {sop_class}")


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
        self.burned_in = pixels.BurnedInRules.default(profile.burned_in, profile.attested)
        self.max_inflated = max_inflated

    def check(self, data: bytes) -> None:
        """None when the file may come in; :class:`Rejected` with the reason otherwise."""
        try:
            part = open_part10(undeflate(data, max_inflated=self.max_inflated))
            reader = Reader(part.buf)
            by_tag = {e.tag: e for e in reader.elements(part.start, len(part.buf), part.syntax)}
            text = text_of(reader, by_tag, part.syntax)
            check_sop_class(self.profile, (text(SOP_CLASS) or [""])[0])
            issuers = (
                *text(ISSUER)[:1],
                *qualifier_issuers(reader, by_tag.get(ISSUER_QUALIFIERS), part.syntax),
            )
            self.namespace.resolve(issuers)
            if PIXEL_DATA in by_tag:
                burned_in_rule(self.burned_in, by_tag, text, part)
        except (Malformed, struct.error, IndexError, RecursionError) as exc:
            raise Rejected(f"not a well-formed DICOM Part 10 file: {exc}") from exc

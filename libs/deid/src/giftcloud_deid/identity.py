"""Who an instance is of, as its header says: the patient's names, IDs and issuers, at
the top and in Other Patient IDs; the texts a scrub removes from free text."""

from __future__ import annotations

from collections.abc import Callable

from giftcloud_dicom.raw import UNDEFINED, Element, Reader, Syntax

from giftcloud_deid.policy import (
    NUMBER_VRS,
)
from giftcloud_deid.tags import (
    ISSUER,
    ISSUER_QUALIFIERS,
    LOCAL_NAMESPACE_ID,
    PATIENT_ID,
    UNIVERSAL_ENTITY_ID,
)


def text_of(
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


def items_of(reader: Reader, element: Element | None, syntax: Syntax) -> list[dict[int, Element]]:
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


def qualifier_issuers(reader: Reader, element: Element | None, syntax: Syntax) -> list[str]:
    """UniversalEntityID and LocalNamespaceEntityID of IssuerOfPatientIDQualifiersSequence."""
    found = []
    for item in items_of(reader, element, syntax):
        for tag in (UNIVERSAL_ENTITY_ID, LOCAL_NAMESPACE_ID):
            if tag in item:
                found += reader.text(item[tag])[:1]
    return found


def other_ids(
    reader: Reader, element: Element | None, syntax: Syntax
) -> list[tuple[str, list[str]]]:
    """(PatientID, its issuer values) of each item of OtherPatientIDsSequence."""
    others = []
    for item in items_of(reader, element, syntax):
        patient = reader.text(item[PATIENT_ID])[:1] if PATIENT_ID in item else []
        issuers = reader.text(item[ISSUER])[:1] if ISSUER in item else []
        issuers += qualifier_issuers(reader, item.get(ISSUER_QUALIFIERS), syntax)
        others.append(((patient or [""])[0], issuers))
    return others

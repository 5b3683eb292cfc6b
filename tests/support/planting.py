"""Plant a unique marker in every Annex E attribute, at the top level and deeper.

``plant(ds, options)`` adds (or overwrites) each attribute of Table E.1-1 that can hold
a recognisable value with a marker unique to it, and hides more markers inside nested
sequences, SR content items, private blocks (and a private sequence), overlays and
curves. It returns what it planted: marker → (where, the row's tag) so a test can say
exactly which attribute leaked.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import date, timedelta

from giftcloud_deid.rules import load_table
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

TEXT = {"LO", "SH", "PN", "LT", "ST", "UT", "UC", "CS", "AE"}
#: attributes whose values the engine writes itself (subject label, method)
ENGINE_SET = {0x00100010, 0x00100020, 0x00120062, 0x00120063, 0x00120064, 0x00280303}
#: attributes the planting must not touch for the file to stay an instance at all
STRUCTURAL = {0x00080016, 0x00020002, 0x00020010, 0x7FE00010}
#: sequences planted with their own contents further down
PLANTED_BELOW = {0x00081140, 0x0040A730}


@dataclass(frozen=True)
class Marker:
    value: str
    where: str
    tag: int  # the Annex E row it stands for (-1 for private, overlay, curve)
    vr: str
    container: int = -1  # the row of the sequence it is nested in (-1: top level)


class Planter:
    def __init__(self) -> None:
        self.count = 0
        self.markers: list[Marker] = []

    def value(self, vr: str, where: str, tag: int, container: int = -1) -> str | None:
        self.count += 1
        n = self.count
        # text markers count in letters: a run of digits reads as an ID or a date, which
        # Clean Descriptors takes out of a description (a marker identifies no one)
        code = _letters(n)
        if vr in ("CS", "AE"):
            value = f"MKC{code}"
        elif vr == "SH":
            value = f"MKS{code}X"
        elif vr == "PN":
            value = f"MKP{code}^GIVEN{code}"
        elif vr in TEXT:
            value = f"MKT{code} free text marker"
        elif vr == "DA":
            value = (date(1901, 1, 1) + timedelta(days=n)).strftime("%Y%m%d")
        elif vr == "DT":
            value = (date(1901, 1, 1) + timedelta(days=n)).strftime("%Y%m%d") + f"1200{n % 60:02d}"
        elif vr == "TM":
            value = f"2359{n % 60:02d}.{n:06d}"
        elif vr == "UI":
            value = f"1.2.826.0.1.3680043.9.9999.1{n:05d}"  # fixed width: none prefixes another
        else:
            return None  # numbers, ages and binary values cannot carry a findable marker
        self.markers.append(Marker(value, where, tag, vr, container))
        return value


def _letters(n: int) -> str:
    """``n`` in five capital letters (AAAAA, AAAAB, …): unique, fixed width, no digits."""
    code = ""
    for _ in range(5):
        n, digit = divmod(n, 26)
        code = chr(ord("A") + digit) + code
    return code


def _vr(tag: int) -> str:
    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return ""


def _text_item(planter: Planter, where: str, container: int) -> Dataset:
    item = Dataset()
    for tag in (0x00100010, 0x00081030, 0x00080020, 0x0040A124):  # name, text, date, UID
        vr = _vr(tag)
        nested = f"{where} > ({tag >> 16:04X},{tag & 0xFFFF:04X})"
        value = planter.value(vr, nested, tag, container)
        item.add_new(tag, vr, value)
    return item


def plant(ds: Dataset) -> list[Marker]:
    planter = Planter()
    table = load_table()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for tag, row in table.rows.items():
            if tag in ENGINE_SET or tag in STRUCTURAL or tag in PLANTED_BELOW:
                continue
            if tag >> 16 in (0x0000, 0x0002):
                continue
            vr = _vr(tag)
            where = f"({tag >> 16:04X},{tag & 0xFFFF:04X}) {row.name}"
            if vr == "SQ":
                ds.add_new(tag, vr, Sequence([_text_item(planter, where, tag)]))
                continue
            if " or " in vr or not vr:
                continue
            value = planter.value(vr, where, tag)
            if value is not None:
                ds.add_new(tag, vr, value)
        # nested: a kept sequence whose items hold identifiers and UIDs
        ref = _text_item(planter, "ReferencedImageSequence item", 0x00081140)
        ref.ReferencedSOPClassUID = ds.SOPClassUID
        ref.ReferencedSOPInstanceUID = planter.value(
            "UI", "nested Referenced SOP Instance UID", 0x00081155, 0x00081140
        )
        ds.ReferencedImageSequence = Sequence([ref])
        # deeper still: a sequence in a sequence in a sequence (all kept by default)
        inner = Dataset()
        inner.CodeValue = "T-A0100"
        inner.CodingSchemeDesignator = "SRT"
        inner.CodeMeaning = "Brain"
        inner.add_new(0x00100010, "PN", planter.value("PN", "deep name", 0x00100010, 0x00082218))
        middle = Dataset()
        middle.AnatomicRegionSequence = Sequence([inner])
        middle.add_new(
            0x00081030, "LO", planter.value("LO", "deep description", 0x00081030, 0x00082218)
        )
        ds.add_new(0x00082218, "SQ", Sequence([middle]))  # AnatomicRegionSequence
        # SR content items
        content = Dataset()
        content.RelationshipType = "CONTAINS"
        content.ValueType = "TEXT"
        content.add_new(
            0x0040A160, "UT", planter.value("UT", "SR TextValue", 0x0040A160, 0x0040A730)
        )
        content.add_new(
            0x0040A123, "PN", planter.value("PN", "SR PersonName", 0x0040A123, 0x0040A730)
        )
        content.add_new(0x0040A121, "DA", planter.value("DA", "SR Date", 0x0040A121, 0x0040A730))
        ds.ContentSequence = Sequence([content])
        # private blocks, one with a nested private sequence
        block = ds.private_block(0x0019, "MARKER CORP", create=True)
        block.add_new(0x01, "LO", planter.value("LO", "private LO", -1))
        block.add_new(0x02, "SH", planter.value("SH", "private SH", -1))
        nested = Dataset()
        nested.add_new(0x00100010, "PN", planter.value("PN", "private SQ name", -1))
        block.add_new(0x03, "SQ", Sequence([nested]))
        siemens = ds.private_block(0x0029, "SIEMENS CSA HEADER", create=True)
        siemens.add_new(0x10, "OB", planter.value("LO", "private CSA", -1).encode())  # type: ignore[union-attr]
        # overlays and curves
        ds.add_new(0x60004000, "LT", planter.value("LT", "overlay comments", -1))
        ds.add_new(0x60000022, "LO", planter.value("LO", "overlay description", -1))
        ds.add_new(0x60003000, "OW", (planter.value("LO", "overlay data", -1) or "").encode())
        ds.add_new(0x50000022, "LO", planter.value("LO", "curve description", -1))
    return planter.markers


#: the file a held-out probe put in a hub: the markers of a de-identified file set, and
#: still the MRN as the subject and identifiers in plain attributes and free text; with
#: what the audit says of each (the refusal names the attribute)
REPORTED_PID = {
    "PatientName": ("MRN0012345", "PatientName is not a subject label"),
    "PatientID": ("MRN0012345", "PatientID is not a subject label"),
    "AccessionNumber": ("ACC778899", "AccessionNumber has a value"),
    "InstitutionName": ("St Leaky's Hospital", "InstitutionName"),
    "ReferringPhysicianName": ("Who^Doctor", "ReferringPhysicianName has a value"),
    "StudyDescription": ("Follow-up of Jane Doe", "StudyDescription is present"),
    "ImageComments": ("Jane Doe, born 19700101, 1 Secret Lane", "ImageComments is present"),
}


def plant_reported_pid(ds: Dataset) -> list[str]:
    """Put :data:`REPORTED_PID` into ``ds``; what a refusal must name."""
    for keyword, (value, _) in REPORTED_PID.items():
        setattr(ds, keyword, value)
    return [named for _, named in REPORTED_PID.values()]

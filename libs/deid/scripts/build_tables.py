"""Regenerate giftcloud_deid's data tables from the reference facts.

    python libs/deid/scripts/build_tables.py [REFERENCE_DIR [OUT_DIR]]

Reads ``annex-e/confidentiality_profile_attributes.json`` (PS3.15 Table E.1-1, rev 2024b,
as published by innolitics/dicom-standard, MIT) and ``burned-in/deid.dicom*`` (pydicom/deid's
filter lists, MIT, partly from RSNA CTP) from REFERENCE_DIR (default ``../shared/reference``),
adds the rows the standard gained after 2024b (listed below, as the Basic Profile actions
published in dicom-anonymizer's ``dicomfields_2026c``; their option columns follow the row
named in ``like``), and writes ``src/giftcloud_deid/data/annex_e.json`` and
``src/giftcloud_deid/data/burned_in.json``. The outputs are the project's own data: numeric
tags, our option names, our rule shapes.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "src" / "giftcloud_deid" / "data"

#: reference column → our option name
OPTION_COLUMNS = {
    "rtnLongFullDatesOpt": "retain_full_dates",
    "rtnLongModifDatesOpt": "retain_modified_dates",
    "rtnPatCharsOpt": "retain_patient_characteristics",
    "rtnDevIdOpt": "retain_device_identity",
    "rtnUIDsOpt": "retain_uids",
    "rtnSafePrivOpt": "retain_safe_private",
    "rtnInstIdOpt": "retain_institution_identity",
    "cleanDescOpt": "clean_descriptors",
    "cleanStructContOpt": "clean_structured_content",
    "cleanGraphOpt": "clean_graphics",
}

#: rows added to Table E.1-1 after rev 2024b: tag → (name, basic action, row whose options apply)
ADDED_AFTER_2024B: dict[str, tuple[str, str, str | None]] = {
    "00081301": ("Principal Diagnosis Code Sequence", "X", "00081084"),
    "00081302": ("Primary Diagnosis Code Sequence", "X", "00081084"),
    "00081303": ("Secondary Diagnoses Code Sequence", "X", "00081084"),
    "00081304": ("Histological Diagnoses Code Sequence", "X", "00081084"),
    "00100011": ("Person Names to Use Sequence", "X", None),
    "00100012": ("Name to Use", "X", None),
    "00100013": ("Name to Use Comment", "X", None),
    "00100014": ("Third Person Pronouns Sequence", "X", None),
    "00100015": ("Pronoun Code Sequence", "X", None),
    "00100016": ("Pronoun Comment", "X", None),
    "00100041": ("Gender Identity Sequence", "X", None),
    "00100042": ("Sex Parameters for Clinical Use Category Comment", "X", None),
    "00100043": ("Sex Parameters for Clinical Use Category Sequence", "X", None),
    "00100044": ("Gender Identity Code Sequence", "X", None),
    "00100045": ("Gender Identity Comment", "X", None),
    "00100046": ("Sex Parameters for Clinical Use Category Code Sequence", "X", None),
    "00100047": ("Sex Parameters for Clinical Use Category Reference", "X", None),
    "00102161": ("Ethnic Group Code Sequence", "X", "00102160"),
    "00102162": ("Ethnic Groups", "X", "00102160"),
    "00181010": ("Secondary Capture Device ID", "X", "00181000"),
    "00181011": ("Hardcopy Creation Device ID", "X", "00181000"),
    "003A0020": ("Multiplex Group Label", "X", "00081030"),
    "003A0203": ("Channel Label", "X", "00081030"),
    "003A020C": ("Channel Derivation Description", "X", "00081030"),
    "00400556": ("Acquisition Context Description", "X", "00081030"),
    "0040A034": ("Effective Start DateTime", "X", "0040A030"),
    "0040A035": ("Effective Stop DateTime", "X", "0040A030"),
    "0040B020": ("Waveform Annotation Sequence", "X/D", "00700001"),
    "0040B034": ("Annotation DateTime", "X", "0040A030"),
    "0040B036": ("Segment Definition DateTime", "X", "0040A030"),
    "0040B03B": ("Montage Name", "X", "00081030"),
    "0040B03F": ("Montage Channel Label", "X", "00081030"),
    "0040E012": ("Display URI", "X", None),
    "00700006": ("Unformatted Text Value", "D", "00700001"),
    "300A0054": ("Table Top Position Alignment UID", "U", "00080018"),
}

#: the attribute's Type where the IODs that carry it agree (1, 2 or 3); the choice among
#: X/Z, X/D, Z/D, X/Z/D follows it (X for 3, Z for 2, D for 1); others fall back at run time
TYPES: dict[str, str] = {
    "00400555": "2",
    "00080022": "3",
    "0008002A": "3",
    "00181400": "3",
    "00080032": "3",
    "22000005": "3",
    "00700084": "2",
    "00080023": "2",
    "00080033": "2",
    "00180010": "2",
    "0018700C": "3",
    "0018700A": "3",
    "00181000": "3",
    "00189517": "3",
    "30080054": "3",
    "00080012": "3",
    "00080013": "3",
    "00080082": "3",
    "00080080": "3",
    "00189919": "3",
    "3010004D": "3",
    "3010004C": "3",
    "22000002": "3",
    "30080056": "3",
    "0040A032": "3",
    "00081072": "3",
    "00081070": "3",
    "00102203": "3",
    "00100020": "2",
    "00181030": "3",
    "00081140": "3",
    "00081111": "3",
    "00081110": "3",
    "00321060": "3",
    "300E0008": "2",
    "300A0006": "2",
    "300A0007": "2",
    "30100056": "3",
    "00080021": "3",
    "00080031": "3",
    "00082112": "3",
    "30080105": "2",
    "00189516": "3",
    "00081010": "3",
    "0018700E": "3",
    "30080250": "2",
    "300A00B2": "2",
    "30100077": "3",
    "30080251": "2",
    "0040B020": "3",
}
#: SOP classes (by UID prefix) in which an attribute has another Type
TYPE_OVERRIDES: dict[str, dict[str, str]] = {
    # SR Document General Module: Content Date and Time are Type 1
    "1.2.840.10008.5.1.4.1.1.88.": {"00080023": "1", "00080033": "1"},
}

#: PS3.15 Table E.3.10-1, Safe Private Attributes (a subset: the diffusion, dose and
#: quantitation attributes most used in research): (private creator, group, element byte)
SAFE_PRIVATE: list[tuple[str, str, str, str]] = [
    ("SIEMENS MR HEADER", "0019", "08", "CSA Image Header Type"),
    ("SIEMENS MR HEADER", "0019", "09", "CSA Image Header Version"),
    ("SIEMENS MR HEADER", "0019", "0A", "Number of Images in Mosaic"),
    ("SIEMENS MR HEADER", "0019", "0B", "Slice Measurement Duration"),
    ("SIEMENS MR HEADER", "0019", "0C", "B Value"),
    ("SIEMENS MR HEADER", "0019", "0D", "Diffusion Directionality"),
    ("SIEMENS MR HEADER", "0019", "0E", "Diffusion Gradient Direction"),
    ("SIEMENS MR HEADER", "0019", "0F", "Gradient Mode"),
    ("SIEMENS MR HEADER", "0019", "27", "B Matrix"),
    ("SIEMENS MR HEADER", "0019", "28", "Bandwidth per Pixel Phase Encode"),
    ("GEMS_PARM_01", "0043", "39", "Slop Integer 6-9 (b-value)"),
    ("GEMS_ACQU_01", "0019", "BB", "User data (diffusion direction)"),
    ("GEMS_ACQU_01", "0019", "BC", "User data (diffusion direction)"),
    ("GEMS_ACQU_01", "0019", "BD", "User data (diffusion direction)"),
    ("Philips Imaging DD 001", "2001", "03", "Diffusion B-Factor"),
    ("Philips Imaging DD 001", "2001", "04", "Diffusion Direction"),
    ("Philips MR Imaging DD 001", "2005", "B0", "Diffusion Direction RL"),
    ("Philips MR Imaging DD 001", "2005", "B1", "Diffusion Direction AP"),
    ("Philips MR Imaging DD 001", "2005", "B2", "Diffusion Direction FH"),
    ("Philips MR Imaging DD 001", "2005", "0E", "Scale Slope"),
    ("Philips PET Private Group", "7053", "00", "SUV Factor"),
    ("Philips PET Private Group", "7053", "09", "Activity Concentration Scale Factor"),
    ("GEMS_PETD_01", "0009", "3B", "Trigger Time"),
    ("ELSCINT1", "00E1", "21", "DLP"),
    ("ELSCINT1", "01F1", "26", "Pitch"),
    ("ELSCINT1", "01F1", "27", "Rotation Time"),
]


def _tag_key(row: dict[str, Any]) -> str:
    return str(row["id"]).upper()


def annex_e(reference: Path) -> dict[str, Any]:
    source = json.loads(
        (reference / "annex-e" / "confidentiality_profile_attributes.json").read_text()
    )
    rows: dict[str, dict[str, Any]] = {}
    repeating: dict[str, dict[str, Any]] = {}
    private: dict[str, Any] = {}
    for row in source:
        entry = {
            "name": row["name"],
            "basic": row["basicProfile"],
            "options": {ours: row[col] for col, ours in OPTION_COLUMNS.items() if col in row},
            "in_standard_iod": row.get("stdCompIOD") == "Y",
        }
        key = _tag_key(row)
        if key.startswith("GGGG"):
            private = entry
        elif "X" in key:
            # (50XX,XXXX) → mask FF000000 / value 50000000; (60XX,3000) → FF00FFFF / 60003000
            mask = "".join("0" if c == "X" else "F" for c in key)
            value = key.replace("X", "0")
            repeating[value] = {**entry, "mask": mask}
        else:
            rows[key] = entry
    for key, (name, basic, like) in ADDED_AFTER_2024B.items():
        if key in rows:
            raise SystemExit(f"{key} is already in the reference table")
        options = rows[like]["options"] if like else {}
        rows[key] = {
            "name": name,
            "basic": basic,
            "options": dict(options),
            "in_standard_iod": True,
            "added": "2026c",
        }
    for key, kind in TYPES.items():
        rows[key]["type"] = kind
    return {
        "provenance": (
            "PS3.15 Table E.1-1 rev 2024b via innolitics/dicom-standard (MIT) plus rows added "
            "through 2026c (as listed by dicom-anonymizer, BSD-3); regenerate with "
            "libs/deid/scripts/build_tables.py"
        ),
        "rows": dict(sorted(rows.items())),
        "repeating": repeating,
        "private": private,
        "type_overrides": TYPE_OVERRIDES,
        "safe_private": [
            {"creator": c, "group": g, "element": e, "name": n} for c, g, e, n in SAFE_PRIVATE
        ],
    }


_CONDITION = re.compile(
    r"^(contains|equals|notequals|missing|empty|present|notcontains)\s+(\S+)\s*(.*)$"
)


def _conditions(text: str) -> list[dict[str, str]]:
    """One criteria line: conditions joined by ``||`` (any) — returned as alternatives."""
    alternatives = []
    for part in text.split("||"):
        match = _CONDITION.match(part.strip())
        if not match:
            raise SystemExit(f"cannot parse criterion {part!r}")
        op, field, value = match.groups()
        alternatives.append({"op": op, "field": field, "value": value.strip()})
    return alternatives


def burned_in(reference: Path) -> dict[str, Any]:
    """deid's filter files → rules: ``all`` of criteria groups (each ``any`` of conditions)."""
    rules: list[dict[str, Any]] = []
    for name in ("deid.dicom", "deid.dicom.ultrasound"):
        section = ""
        current: dict[str, Any] | None = None
        for raw in (reference / "burned-in" / name).read_text().splitlines():
            line = (
                raw.split("#", 1)[0].strip() if not raw.strip().startswith("LABEL") else raw.strip()
            )
            if not line or line.startswith("FORMAT"):
                continue
            if line.startswith("%filter"):
                section = line.split()[1]
                continue
            if line.startswith("%"):
                section = ""  # %header and others: not pixel rules
                continue
            if not section:
                continue
            if line.startswith("LABEL"):
                label = line[len("LABEL") :].split("#", 1)[0].strip()
                current = {
                    "label": label,
                    "list": section,
                    "source": name,
                    "all": [],
                    "regions": [],
                }
                if "(CTP)" in raw:
                    current["origin"] = "RSNA CTP"
                rules.append(current)
                continue
            if current is None:
                continue
            if line.startswith("coordinates"):
                value = line.split(None, 1)[1]
                if value == "all":
                    current["regions"].append({"all": True})
                else:
                    xmin, ymin, xmax, ymax = (int(v) for v in value.split(","))
                    current["regions"].append(
                        {"x": xmin, "y": ymin, "width": xmax - xmin, "height": ymax - ymin}
                    )
                continue
            if line.startswith("ctpcoordinates"):
                x, y, width, height = (int(v) for v in line.split(None, 1)[1].split(","))
                current["regions"].append({"x": x, "y": y, "width": width, "height": height})
                continue
            if line.startswith("keepcoordinates"):
                current["keep_from"] = line.split("from:", 1)[1].strip()
                continue
            if line.startswith("||") and current["all"]:
                current["all"][-1].extend(_conditions(line[2:].strip()))
                continue
            if line.startswith("+"):
                line = line[1:].strip()
            current["all"].append(_conditions(line))
    return {
        "provenance": (
            "pydicom/deid burned-in annotation filters (MIT; entries marked origin came from "
            "RSNA CTP); regenerate with libs/deid/scripts/build_tables.py"
        ),
        "rules": rules,
    }


def main() -> None:
    default = HERE.parents[2].parent / "shared" / "reference"
    reference = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else OUT
    out.mkdir(parents=True, exist_ok=True)
    tables = (("annex_e.json", annex_e(reference)), ("burned_in.json", burned_in(reference)))
    for name, table in tables:
        (out / name).write_text(json.dumps(table, indent=1, sort_keys=False) + "\n")
        print(f"wrote {out / name}")


if __name__ == "__main__":
    main()

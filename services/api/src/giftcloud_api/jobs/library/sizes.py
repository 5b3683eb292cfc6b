"""Each series' size: a listing, one row per series, so a site's steward reads it before
anything leaves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydicom


def run(inputs: Path, parameters: dict[str, Any]) -> dict[str, Any]:
    """Rows, columns and instances of each series in the cohort (held for the steward)."""
    rows = []
    for series in sorted(p for p in inputs.iterdir() if p.is_dir()):
        files = sorted(series.glob("*.dcm"))
        first = pydicom.dcmread(files[0], stop_before_pixels=True)
        rows.append(
            {
                "modality": str(first.get("Modality", "")),
                "rows": int(first.get("Rows", 0)),
                "columns": int(first.get("Columns", 0)),
                "instances": len(files),
            }
        )
    return {"kind": "listing", "series": rows}

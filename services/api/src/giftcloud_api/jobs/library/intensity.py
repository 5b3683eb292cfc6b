"""Mean intensity per series, as a histogram of series: an aggregate a site may release
without its steward when every bin holds at least its k series."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pydicom


def run(inputs: Path, parameters: dict[str, Any]) -> dict[str, Any]:
    """Histogram of the series' mean stored pixel value (rescaled where the images say)."""
    low = float(parameters.get("low", -1024))
    high = float(parameters.get("high", 3072))
    bins = int(parameters.get("bins", 8))
    if not (high > low and 1 <= bins <= 64):
        raise ValueError("parameters: low < high and 1 <= bins <= 64")
    width = (high - low) / bins
    counts = [0] * bins
    for series in sorted(p for p in inputs.iterdir() if p.is_dir()):
        means = []
        for path in sorted(series.glob("*.dcm")):
            ds = pydicom.dcmread(path)
            if "PixelData" not in ds:
                continue
            pixels = ds.pixel_array.astype(np.float64)
            slope = float(getattr(ds, "RescaleSlope", 1) or 1)
            means.append(float(pixels.mean()) * slope + float(getattr(ds, "RescaleIntercept", 0)))
        if means:
            index = int((float(np.mean(means)) - low) // width)
            counts[min(max(index, 0), bins - 1)] += 1  # out of range: the end bins
    cells = [
        {"key": [f"{low + i * width:g} to {low + (i + 1) * width:g}"], "count": n}
        for i, n in enumerate(counts)
        if n  # an empty bin is left out
    ]
    return {"kind": "aggregate", "cells": cells, "total": sum(counts)}

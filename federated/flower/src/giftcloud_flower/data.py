"""What a ClientApp at a site computes on: its de-identified series, read from the site's
own DICOMweb (QIDO-RS to list, WADO-RS to fetch) with the project key in the site's file.

Nothing here leaves the site; the features are numbers per series, summed or trained on
by the apps, and every reply passes the site's disclosure control.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from typing import Any

import httpx
import numpy as np
import pydicom

from giftcloud_flower.site import Site

#: the numeric features apps may ask for (an allow-list, as the counts' attributes are)
FEATURES = ("age", "intensity", "instances")
PAGE = 500


@dataclass(frozen=True)
class Series:
    modality: str
    sex: str
    #: age at the study in years (PatientAge), None when the site's archive has none
    age: float | None
    #: mean stored pixel value over the series, rescaled where the images say
    intensity: float
    instances: int

    def feature(self, name: str) -> float | None:
        if name not in FEATURES:
            raise ValueError(f"{name!r} is not a feature: one of {', '.join(FEATURES)}")
        value: float | int | None = getattr(self, name)
        return None if value is None else float(value)


def _age(value: str) -> float | None:
    units = {"D": 1 / 365.25, "W": 7 / 365.25, "M": 1 / 12, "Y": 1.0}
    if len(value) == 4 and value[:3].isdigit() and value[3] in units:
        return int(value[:3]) * units[value[3]]
    return None


def _parts(body: bytes, content_type: str) -> Iterator[bytes]:
    """The bodies of a multipart/related answer (PS3.18 §8.6.1.2)."""
    params = dict(p.strip().split("=", 1) for p in content_type.split(";")[1:] if "=" in p)
    boundary = params.get("boundary", "").strip('"').encode()
    if not boundary:
        raise ValueError(f"a WADO-RS answer without a boundary: {content_type}")
    for chunk in body.split(b"--" + boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        _, _, rest = chunk.partition(b"\r\n\r\n")
        yield rest[:-2] if rest.endswith(b"\r\n") else rest


def _value(found: dict[str, Any], tag: str) -> str:
    values = found.get(tag, {}).get("Value") or [""]
    return str(values[0])


def read(site: Site, modality: str | None = None) -> list[Series]:
    """Every series of the site's project (of ``modality`` when given), with its features."""
    headers = {"Authorization": f"Bearer {site.key()}"}
    root = f"{site.api_url}/dicomweb/{site.project}"
    out: list[Series] = []
    with httpx.Client(headers=headers, timeout=120) as http:
        listed: list[dict[str, Any]] = []
        while True:
            params: dict[str, str | int] = {"limit": PAGE, "offset": len(listed)}
            if modality:
                params["Modality"] = modality
            page = http.get(f"{root}/series", params=params)
            page.raise_for_status()
            found = page.json() if page.content else []
            listed += found
            if len(found) < PAGE:
                break
        for series in listed:
            study, uid = _value(series, "0020000D"), _value(series, "0020000E")
            got = http.get(
                f"{root}/studies/{study}/series/{uid}",
                headers={"Accept": 'multipart/related; type="application/dicom"'},
            )
            got.raise_for_status()
            means, first = [], None
            for part in _parts(got.content, got.headers["content-type"]):
                ds = pydicom.dcmread(BytesIO(part))
                first = first or ds
                if "PixelData" in ds:
                    slope = float(getattr(ds, "RescaleSlope", 1) or 1)
                    shift = float(getattr(ds, "RescaleIntercept", 0) or 0)
                    means.append(
                        float(np.asarray(ds.pixel_array, np.float64).mean()) * slope + shift
                    )
            if first is None or not means:
                continue
            out.append(
                Series(
                    modality=str(getattr(first, "Modality", "")),
                    sex=str(getattr(first, "PatientSex", "")),
                    age=_age(str(getattr(first, "PatientAge", ""))),
                    intensity=float(np.mean(means)),
                    instances=len(means),
                )
            )
    return out

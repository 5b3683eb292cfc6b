"""A hub and two sites for the federation tests: the project, the person at the hub who
asks, each site's cohort, and how each site is seen from the hub."""

from __future__ import annotations

from typing import Any

import httpx

from support.deployment import Deployment
from support.dicom_files import read, synthetic_instance, to_bytes

PROJECT = "cohort"
ROSA = ("rosa", "rosa asks the sites questions")
#: subjects (one CT or MR series each) per modality and sex at each site
COHORTS = {
    "site-a": {("CT", "F"): 20, ("CT", "M"): 3, ("CT", "O"): 12, ("MR", "F"): 4},
    "site-b": {("CT", "F"): 12, ("CT", "M"): 11},
}
#: the stored value of every pixel of a series, by sex (the intensity jobs' ground truth)
INTENSITY = {"F": 100, "O": 100, "M": 700}
BY_SEX = {
    "criteria": [{"attribute": "modality", "op": "eq", "value": "CT"}],
    "group_by": ["patient_sex"],
}


def cohort(site: str, counts: dict[tuple[str, str], int]) -> list[bytes]:
    files = []
    for (modality, sex), count in counts.items():
        for n in range(count):
            ds = read(
                synthetic_instance(f"{site}^{modality}{sex}{n}", f"{site}-{modality}{sex}{n}")
            )
            ds.Modality, ds.PatientSex, ds.PatientAge = modality, sex, f"{40 + n:03d}Y"
            ds.PixelData = INTENSITY[sex].to_bytes(2, "little") * (ds.Rows * ds.Columns)
            files.append(to_bytes(ds))
    return files


def sites(hub: Deployment) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = httpx.get(
        f"{hub.url}/api/federation/sites", headers=hub.token()
    ).json()
    return found

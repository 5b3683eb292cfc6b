"""OHIF (``@ohif/app`` from the npm registry, installed as the image and ``giftcloud up``
install it) served by the five services behind nginx, in Debian's chromium: a study opens
from its page in OHIF, its images drawn from giftcloud's DICOMweb with the session's cookie
are the stored pixels (the canvas read back and compared), and its segmentation is laid
over them where the mask says."""

from __future__ import annotations

import base64
import io
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from giftcloud_api.ohif.install import install, user_cache
from PIL import Image
from support.browser import ARTIFACTS, Tab
from support.deployment import Deployment, deployed
from support.dicom_files import to_bytes
from support.infra import Seaweed
from support.results import ct_series, segmentation

ADMIN = ("admin", "admin-test-password")
PROJECT = "viewing"
SIZE = 64
SLICES = 12


def pattern() -> np.ndarray:
    """What each slice shows: a ramp from left to right, a bright block at the top right (so
    that a mirrored, turned or shifted picture does not pass) and a bright frame (so that
    the picture's edges can be found on the canvas)."""
    pixels = np.tile(np.arange(SIZE, dtype=np.uint16) * 16, (SIZE, 1))
    pixels[4:14, 44:60] = 2000
    pixels[[0, -1], :] = pixels[:, [0, -1]] = 1500
    return pixels


#: stored pixels away from the sharp edges (drawn smoothed, a pixel either side)
STEADY = np.ones((SIZE, SIZE), bool)
STEADY[[0, 1, -2, -1], :] = STEADY[:, [0, 1, -2, -1]] = False
STEADY[3:15, 43:61] = False
STEADY[5:13, 45:59] = True


def study_files() -> list[bytes]:
    """A CT series drawn with :func:`pattern` and a segmentation of it (rows and columns 16
    to 31 of every slice), identifiable as a hospital would send them."""
    files = []
    for data in ct_series(SLICES, "OHIF-1", size=SIZE):
        ds = pydicom.dcmread(io.BytesIO(data))
        ds.PixelData = pattern().tobytes()
        files.append(to_bytes(ds))
    return [*files, segmentation(files)]


@pytest.fixture(scope="module")
def ohif_folder() -> Path:
    """OHIF where ``giftcloud up`` keeps it (downloaded once per machine, its hash checked)."""
    return install(user_cache()).folder


@pytest.fixture(scope="module")
def deployment(
    real_services: None,
    seaweed: Seaweed,
    tmp_path_factory: pytest.TempPathFactory,
    ohif_folder: Path,
) -> Iterator[Deployment]:
    logs = tmp_path_factory.mktemp("services")
    with deployed(seaweed, logs, GIFTCLOUD_API__OHIF_DIR=str(ohif_folder)) as running:
        yield running


@pytest.fixture(scope="module")
def study(deployment: Deployment) -> str:
    """The study, archived in the project: the page link's study."""
    deployment.create_project(PROJECT)
    headers = deployment.token(*ADMIN)
    stored = deployment.stow(PROJECT, study_files(), headers)
    assert stored.status_code == 200, stored.text
    deadline = time.monotonic() + 120
    while deployment.instance_count(PROJECT, headers) < SLICES + 1:
        assert time.monotonic() < deadline, "the study was not archived within 120 s"
        time.sleep(1)
    return PROJECT


def canvas(tab: Tab) -> np.ndarray:
    """The viewport's canvas as OHIF drew it (RGB), read back from the page."""
    url = tab.page.evaluate(
        "document.querySelector('canvas.cornerstone-canvas').toDataURL('image/png')"
    )
    picture = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    return np.asarray(picture.convert("RGB")).astype(float)


def image_area(drawn: np.ndarray) -> np.ndarray:
    """The part of the canvas the image fills (within its drawn frame), all channels."""
    bright = drawn.mean(axis=2) > 120
    rows = np.flatnonzero(bright.mean(axis=1) > 0.5)
    columns = np.flatnonzero(bright.mean(axis=0) > 0.5)
    if len(rows) < 2 or len(columns) < 2:
        return drawn[:0, :0]
    return drawn[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]


def as_stored(area: np.ndarray) -> np.ndarray:
    """The drawn picture brought back to the stored rows and columns (its centre points)."""
    height, width = area.shape[:2]
    rows = ((np.arange(SIZE) + 0.5) * height / SIZE).astype(int)
    columns = ((np.arange(SIZE) + 0.5) * width / SIZE).astype(int)
    return area[np.ix_(rows, columns)]


def wait_for(tab: Tab, check: Any, what: str, seconds: float = 90) -> np.ndarray:
    deadline = time.monotonic() + seconds
    while True:
        drawn = canvas(tab)
        if check(drawn):
            return drawn
        assert time.monotonic() < deadline, f"{what} within {seconds} s"
        time.sleep(1)


def red(drawn: np.ndarray) -> np.ndarray | None:
    """How much redder than green each stored pixel is drawn (None: no image drawn yet)."""
    area = image_area(drawn)
    return as_stored(area[..., 0] - area[..., 1]) if area.shape[0] > 100 else None


def segment_drawn(drawn: np.ndarray) -> bool:
    """The segment (rows and columns 16 to 31) drawn red, well inside its outline."""
    redness = red(drawn)
    return redness is not None and redness[18:30, 18:30].mean() > 30


def test_a_study_opens_in_ohif_with_its_pixels_and_its_segmentation(
    deployment: Deployment, browser: Any, study: str
) -> None:
    tab = Tab(browser, deployment.url)
    try:
        tab.sign_in(*ADMIN)
        tab.go(f"/projects/{study}")
        tab.page.locator("#studies tbody a").first.click()
        study_uid = tab.page.url.rsplit("/", 1)[1]
        link = tab.page.locator("a", has_text="Open in OHIF")
        assert link.get_attribute("href") == (
            f"/ohif/viewer/{PROJECT}?StudyInstanceUIDs={study_uid}"
        )
        link.click()
        tab.page.wait_for_selector("canvas.cornerstone-canvas", timeout=120_000)

        # the image: drawn as stored (same picture, up to OHIF's window and scaling)
        drawn = wait_for(
            tab, lambda d: image_area(d).shape[0] > 100, "OHIF drew no image from giftcloud"
        )
        tab.page.screenshot(path=str(ARTIFACTS / "ohif-study.png"))
        area = image_area(drawn)
        assert abs(area.shape[0] - area.shape[1]) <= 2, area.shape  # square, as stored
        seen = as_stored(area.mean(axis=2))
        expected = pattern().astype(float)
        correlation = np.corrcoef(seen[STEADY], expected[STEADY])[0, 1]
        assert correlation > 0.98, correlation
        block = seen[5:13, 45:59].mean()
        assert block > seen[5:13, 5:19].mean() + 50 and block > seen[45:55, 45:59].mean() + 50

        # the segmentation: OHIF lists it with the study; opened, it is laid over the image
        tab.page.locator("text=lesion segmentation").dblclick()
        tab.page.get_by_role("button", name="Yes").click(timeout=60_000)

        overlaid = wait_for(tab, segment_drawn, "OHIF laid no segmentation over the image")
        tab.page.screenshot(path=str(ARTIFACTS / "ohif-segmentation.png"))
        redness = red(overlaid)
        assert redness is not None
        outside = np.ones((SIZE, SIZE), bool)
        outside[14:34, 14:34] = False  # the mask (16 to 31) and its drawn outline
        assert abs(redness[outside]).mean() < 5, abs(redness[outside]).mean()
    finally:
        errors = tab.errors
        tab.close()
    assert errors == [], errors


def test_ohif_is_offered_only_to_a_viewer_of_the_project(
    deployment: Deployment, browser: Any, study: str
) -> None:
    """Someone of another project: their OHIF knows that project only, and giftcloud's
    DICOMweb refuses them this one; signed out, OHIF's page sends the browser to sign in."""
    deployment.create_project("elsewhere")
    deployment.add_person("stranger", "stranger-test-password", "elsewhere", "member")
    tab = Tab(browser, deployment.url)
    try:
        tab.go(f"/ohif/viewer/{PROJECT}?StudyInstanceUIDs=1.2.3")
        assert "/signin" in tab.page.url, tab.page.url
        tab.sign_in("stranger", "stranger-test-password")
        config = tab.page.request.get(f"{deployment.url}/ohif/app-config.js")
        assert config.status == 200, config.status
        sources = re.findall(r'"sourceName": "([^"]+)"', config.text())
        assert sources == ["elsewhere"], sources
        refused = tab.page.request.get(f"{deployment.url}/dicomweb/{PROJECT}/studies")
        assert refused.status in (403, 404), refused.status
    finally:
        tab.close()

"""The web interface as people use it, in Debian's chromium: sign in, make a project,
upload a folder through the file chooser, browse, scroll the viewer, download a zip, add a
colleague who then reads only, and a stranger who sees nothing. Every page is checked with
axe-core (no serious or critical violations) and photographed into the artifacts folder."""

from __future__ import annotations

import base64
import io
import re
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pydicom
import pytest
from giftcloud_core.events import QUEUES, ProfileChanged
from PIL import Image, ImageChops
from pydicom.uid import SecondaryCaptureImageStorage
from support.browser import ARTIFACTS, Tab
from support.deployment import Deployment
from support.dicom_files import synthetic_instance, to_bytes, ultrasound

ADMIN = ("admin", "admin-test-password")
PROJECT = "radiology"
STUDY = "1.2.826.0.1.3680043.9.7.4242.1"
SERIES_SCROLL = f"{STUDY}.1"  # 8 images whose pixels differ
SERIES_FRAMES = f"{STUDY}.2"  # one instance of 3 frames
SERIES_COLOUR = f"{STUDY}.3"  # one RGB image
DICOM_FILES = 10
NOT_DICOM = "not a DICOM Part 10 file: no 'DICM' prefix after the 128-byte preamble; not sent"


def _gradient(i: int, rows: int = 64) -> bytes:
    """A gradient with a bright bar that moves down from image to image."""
    pixels = (np.indices((rows, rows)).sum(axis=0) * 8).astype(np.uint16)
    pixels[4 + 6 * i : 8 + 6 * i, :] = 4000
    return pixels.tobytes()


def write_folder(folder: Path) -> None:
    """A folder as a clinician might have one: a study of three series (with identifiers
    planted, as every synthetic file here has), in sub-folders, and a stray text file."""
    (folder / "scroll").mkdir(parents=True)
    (folder / "other").mkdir()
    for i in range(8):
        sop = f"{SERIES_SCROLL}.{i}"
        ds = pydicom.dcmread(io.BytesIO(synthetic_instance(
            patient="Browser^Betty", patient_id="WEB-1", study_uid=STUDY,
            series_uid=SERIES_SCROLL, sop_uid=sop, rows=64,
        )))  # fmt: skip
        ds.PixelData = _gradient(i)
        ds.InstanceNumber = i + 1
        (folder / "scroll" / f"IM{i:04d}.dcm").write_bytes(to_bytes(ds))
    frames = pydicom.dcmread(io.BytesIO(synthetic_instance(
        patient="Browser^Betty", patient_id="WEB-1", study_uid=STUDY,
        series_uid=SERIES_FRAMES, sop_uid=f"{SERIES_FRAMES}.1", rows=64,
    )))  # fmt: skip
    frames.NumberOfFrames = 3
    frames.SeriesNumber = 2
    frames.PixelData = b"".join(_gradient(i) for i in range(3))
    (folder / "other" / "multiframe.dcm").write_bytes(to_bytes(frames))
    # a screen capture may carry burned-in text: without a word that it does not, it is
    # held back, and the page names it with the reason
    (folder / "other" / "screenshot.dcm").write_bytes(screen_capture(1, said_clean=False))
    (folder / "other" / "colour.dcm").write_bytes(screen_capture(2, said_clean=True))
    (folder / "notes.txt").write_text("not an image: the page must say so and not send it")


def screen_capture(n: int, said_clean: bool) -> bytes:
    """A red RGB secondary capture; ``said_clean``: it says it holds no burned-in text."""
    colour = pydicom.dcmread(io.BytesIO(synthetic_instance(
        patient="Browser^Betty", patient_id="WEB-1", study_uid=STUDY,
        series_uid=SERIES_COLOUR, sop_uid=f"{SERIES_COLOUR}.{n}", rows=32,
    )))  # fmt: skip
    colour.SOPClassUID = colour.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    colour.Modality = "OT"
    colour.SeriesNumber = 3
    colour.SamplesPerPixel = 3
    colour.PhotometricInterpretation = "RGB"
    colour.PlanarConfiguration = 0
    colour.BitsAllocated = colour.BitsStored = 8
    colour.HighBit = 7
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[..., 0] = 200  # red
    colour.PixelData = rgb.tobytes()
    if said_clean:
        colour.BurnedInAnnotation = "NO"
        colour.ImageType = ["DERIVED", "SECONDARY"]
    return to_bytes(colour)


@dataclass
class Uploaded:
    admin: Tab
    study_url: str
    subject: str


@pytest.fixture(scope="module")
def uploaded(
    deployment: Deployment, browser: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Uploaded]:
    """The admin signs in, makes the project on the projects page and uploads the folder
    through the upload page's folder chooser, then waits for the outcome."""
    admin = Tab(browser, deployment.url)
    try:
        admin.go("/")
        assert admin.page.url.startswith(f"{deployment.url}/signin")
        assert admin.check("signin") == []
        admin.sign_in(*ADMIN)
        assert admin.page.url == f"{deployment.url}/"
        admin.page.fill("#project-name", PROJECT)
        admin.page.fill("#project-title", "Radiology research")
        admin.page.click("text=Create project")
        admin.page.wait_for_url(re.compile(f".*/projects/{PROJECT}$"), timeout=60_000)
        assert admin.check("project-empty") == []

        folder = tmp_path_factory.mktemp("upload") / "study-folder"
        write_folder(folder)
        admin.page.click("text=Upload")
        admin.page.wait_for_url(re.compile(".*/upload$"))
        admin.page.set_input_files("#folder", str(folder))
        admin.page.wait_for_selector("[data-upload][data-done=true]", timeout=180_000)
        status = admin.page.inner_text("[data-status]")
        refused = admin.page.inner_text("[data-refused]")
        assert status == f"Done: {DICOM_FILES} new instance(s) archived.", (status, refused)
        assert f"study-folder/notes.txt: {NOT_DICOM}" in refused, refused
        assert re.search(
            r"study-folder/other/screenshot\.dcm: (refused|rejected): .*BurnedInAnnotation", refused
        ), refused
        rows = admin.page.locator("[data-outcome] tbody tr").all_inner_texts()
        columns = [r.split("\t") for r in rows]
        assert sum(int(c[2]) for c in columns) == DICOM_FILES, rows  # new, archived
        assert sum(int(c[4]) for c in columns) == 0, rows  # pending
        assert all(c[0].startswith("study-folder/") for c in columns), rows  # files, not ids
        assert admin.check("upload") == []

        admin.go(f"/projects/{PROJECT}")
        link = admin.page.locator("#studies tbody a").first
        study_url = link.get_attribute("href") or ""
        subject = admin.page.locator("#studies tbody tr.group td strong").first.inner_text()
        yield Uploaded(admin, study_url, subject)
    finally:
        assert admin.errors == [], admin.errors
        admin.close()


def test_projects_page_counts_what_arrived(uploaded: Uploaded) -> None:
    page = uploaded.admin.page
    uploaded.admin.go("/")
    row = page.locator("tbody tr", has=page.locator(f"a[href='/projects/{PROJECT}']"))
    cells = row.locator("td").all_inner_texts()
    assert cells[1:5] == ["owner", "1", "1", str(DICOM_FILES)], cells
    assert re.fullmatch(r"[\d.]+ KB", cells[5]), cells
    assert cells[6].endswith("UTC"), cells
    assert "Radiology research" in cells[0]
    assert uploaded.admin.check("projects") == []


def test_project_page_search_and_filters(uploaded: Uploaded) -> None:
    tab = uploaded.admin
    tab.go(f"/projects/{PROJECT}")
    assert "1 study matches." in tab.page.inner_text("main")
    assert "Browser" not in tab.page.content()  # the planted name never reaches a page
    assert uploaded.subject.startswith("SUBJ-"), uploaded.subject
    tab.page.select_option("#f-modality", "OT")
    tab.page.fill("#f-subject", uploaded.subject[5:9].lower())
    with tab.page.expect_navigation():
        tab.page.click("form.filters button[type=submit]")
    assert "1 study matches." in tab.page.inner_text("main"), tab.page.url
    tab.page.fill("#f-subject", "nobody-by-this-name")
    with tab.page.expect_navigation():
        tab.page.click("form.filters button[type=submit]")
    assert "0 studies match." in tab.page.inner_text("main")
    tab.go(f"/projects/{PROJECT}?date_from=not-a-date")
    assert "is not a date" in tab.page.inner_text("main")
    assert tab.check("project") == []


def test_studies_found_across_projects_and_the_latest_arrivals(uploaded: Uploaded) -> None:
    """From the projects page: a search across every project the viewer may read, the
    latest arrivals, and columns sorted by a click on their heading."""
    tab = uploaded.admin
    tab.go("/")
    tab.page.click("th button.sort >> text=Project")
    assert tab.page.get_attribute("th:has(button.sort:text('Project'))", "aria-sort") == "ascending"
    tab.page.fill("#find-q", uploaded.subject[-6:].lower())  # part of the label, any case
    with tab.page.expect_navigation():
        tab.page.click("form[role=search] button[type=submit]")
    assert tab.page.inner_text("h1") == "Studies found"
    rows = tab.page.locator("#found tbody tr").all_inner_texts()
    assert len(rows) == 1 and PROJECT in rows[0] and uploaded.subject in rows[0], rows
    assert tab.check("studies-found") == []
    tab.page.click("text=Latest arrivals")
    tab.page.wait_for_url(re.compile(".*/studies$"))
    arrived = tab.page.locator("#found tbody tr").all_inner_texts()
    assert arrived and all(PROJECT in r for r in arrived), arrived
    assert f"({DICOM_FILES} new)" in "".join(arrived), arrived  # the folder's ten
    instances = tab.page.locator("#found th button.sort", has_text="Instances")
    instances.click()
    instances.click()
    counts = [int(r.split("\t")[-1]) for r in tab.page.locator("#found tbody tr").all_inner_texts()]
    assert counts == sorted(counts, reverse=True), counts
    assert tab.check("latest-arrivals") == []
    nothing = tab.go("/studies?q=no-such-thing")
    assert nothing is not None and nothing.status == 200
    assert "Nothing matches" in tab.page.inner_text("main")
    assert tab.go("/studies?modality=C;T").status == 400


def test_study_page_shows_each_series_with_a_thumbnail(uploaded: Uploaded) -> None:
    tab = uploaded.admin
    tab.go(uploaded.study_url)
    cards = tab.page.locator("#series .card")
    assert cards.count() == 3
    tab.page.wait_for_function(
        "() => [...document.querySelectorAll('#series img')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    texts = cards.all_inner_texts()
    assert "8 instance(s)" in texts[0] and "MR" in texts[0], texts
    assert "OT" in texts[2], texts
    assert tab.check("study") == []


def test_a_file_attached_to_a_study_is_listed_and_downloaded_from_its_page(
    uploaded: Uploaded, deployment: Deployment
) -> None:
    """A result that is not DICOM, attached by API with its provenance, is on the study's
    page and comes back whole from its link."""
    study = uploaded.study_url.rsplit("/", 1)[1]
    table = b"label,voxels\nlesion,32\n"
    made = httpx.post(
        f"{deployment.url}/api/projects/{PROJECT}/files",
        files={"file": ("volumes.csv", table, "text/csv")},
        data={"study": study, "tool": "lesion-volumes", "tool_version": "2.1", "inputs": study},
        headers=deployment.token(),
    )
    assert made.status_code == 201, made.text
    tab = uploaded.admin
    tab.go(uploaded.study_url)
    listed = tab.page.inner_text("table[aria-labelledby=files]")
    assert "volumes.csv" in listed and "lesion-volumes 2.1" in listed and "the study" in listed
    with tab.page.expect_download() as download:
        tab.page.click("text=volumes.csv")
    assert Path(download.value.path()).read_bytes() == table
    assert tab.check("study-files") == []


def _stage(tab: Tab) -> Image.Image:
    tab.page.wait_for_function(
        "() => { const i = document.querySelector('[data-image]');"
        " return i.complete && i.naturalWidth > 0 }"
    )
    return Image.open(io.BytesIO(tab.page.locator("[data-stage]").screenshot())).convert("RGB")


def test_the_viewer_scrolls_through_a_series(uploaded: Uploaded) -> None:
    tab = uploaded.admin
    tab.go(uploaded.study_url)
    with tab.page.expect_navigation():
        tab.page.locator("#series .card a").first.click()
    assert tab.page.inner_text("[data-position]") == "1 / 8"
    first = _stage(tab)
    tab.page.focus("[data-stage]")
    tab.page.keyboard.press("ArrowDown")
    assert tab.page.inner_text("[data-position]") == "2 / 8"
    second = _stage(tab)
    assert ImageChops.difference(first, second).getbbox() is not None, "the image did not change"
    tab.page.locator("[data-stage]").hover()  # the wheel over the image, wherever it is laid out
    tab.page.mouse.wheel(0, 300)
    tab.page.wait_for_function(
        "() => document.querySelector('[data-position]').textContent === '3 / 8'"
    )
    third = _stage(tab)
    assert ImageChops.difference(second, third).getbbox() is not None
    tab.page.keyboard.press("End")
    assert tab.page.inner_text("[data-position]") == "8 / 8"
    tab.page.select_option("[data-preset]", "40,400")
    assert "window=40,400" in (tab.page.get_attribute("[data-image]", "src") or "")
    windowed = _stage(tab)
    tab.page.select_option("[data-preset]", "")
    assert ImageChops.difference(windowed, _stage(tab)).getbbox() is not None
    assert tab.check("viewer") == []
    background = tab.page.eval_on_selector(
        "[data-viewer]", "e => getComputedStyle(e).backgroundColor"
    )
    assert sum(int(v) for v in re.findall(r"\d+", background)[:3]) < 150, background  # dark

    # window/level by dragging: rendered by the server from the stored values
    stored = _stage(tab)
    box = tab.page.locator("[data-stage]").bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    tab.page.mouse.move(x, y)
    tab.page.mouse.down()
    tab.page.mouse.move(x - 120, y + 40, steps=8)
    tab.page.mouse.up()
    tab.page.wait_for_function("() => document.querySelector('[data-window]').textContent")
    said = tab.page.inner_text("[data-window]")
    assert re.fullmatch(r"C -?\d+ / W \d+", said), said
    assert "window=" in (tab.page.get_attribute("[data-image]", "src") or "")
    dragged = _stage(tab)
    assert ImageChops.difference(stored, dragged).getbbox() is not None, "the window did not change"
    # zoom, pan (Shift + drag), reset
    tab.page.focus("[data-stage]")
    tab.page.keyboard.press("+")
    assert tab.page.get_attribute("[data-viewer]", "data-zoom") == "1.25"
    zoomed = _stage(tab)
    assert ImageChops.difference(dragged, zoomed).getbbox() is not None, "the zoom did not show"
    tab.page.keyboard.down("Shift")
    tab.page.mouse.move(x, y)
    tab.page.mouse.down()
    tab.page.mouse.move(x + 50, y + 30, steps=4)
    tab.page.mouse.up()
    tab.page.keyboard.up("Shift")
    moved = tab.page.eval_on_selector("[data-image]", "e => e.style.transform")
    assert moved.startswith("translate(50px, 30px)"), moved
    tab.page.keyboard.press("0")
    assert tab.page.get_attribute("[data-viewer]", "data-zoom") == "1.00"
    assert tab.page.inner_text("[data-window]") == ""
    assert "window=" not in (tab.page.get_attribute("[data-image]", "src") or "")
    assert tab.check("viewer-tools") == []


def test_multi_frame_and_colour_series_in_the_viewer(uploaded: Uploaded) -> None:
    tab = uploaded.admin
    tab.go(uploaded.study_url)
    with tab.page.expect_navigation():
        tab.page.locator("#series .card").nth(1).locator("a").first.click()
    assert tab.page.inner_text("[data-position]") == "1 / 3"  # a frame each
    first = _stage(tab)
    tab.page.focus("[data-stage]")
    tab.page.keyboard.press("ArrowRight")
    assert ImageChops.difference(first, _stage(tab)).getbbox() is not None
    # cine: Play goes round the frames until Pause
    tab.page.click("[data-play]")
    assert tab.page.get_attribute("[data-play]", "aria-pressed") == "true"
    seen = set()
    for _ in range(50):
        seen.add(tab.page.inner_text("[data-position]"))
        if len(seen) == 3:
            break
        time.sleep(0.05)
    assert seen == {"1 / 3", "2 / 3", "3 / 3"}, seen
    tab.page.click("[data-play]")
    assert tab.page.inner_text("[data-play]") == "Play"
    still = tab.page.inner_text("[data-position]")
    time.sleep(0.4)
    assert tab.page.inner_text("[data-position]") == still
    tab.go(uploaded.study_url)
    with tab.page.expect_navigation():
        tab.page.locator("#series .card").nth(2).locator("a").first.click()
    shot = _stage(tab)
    centre = shot.getpixel((shot.width // 2, shot.height // 2))
    assert isinstance(centre, tuple) and centre[0] > 150 > centre[1], centre  # red


def test_a_study_downloads_as_a_zip_of_its_instances(uploaded: Uploaded) -> None:
    tab = uploaded.admin
    tab.go(uploaded.study_url)
    link = tab.page.locator("a.button[download]")
    label = link.inner_text()
    assert re.fullmatch(r"Download the study \(zip, [\d.]+ KB\)", label), label
    with tab.page.expect_download() as started:
        link.click()
    saved = ARTIFACTS / "study.zip"
    started.value.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        every = archive.namelist()
        names = [n for n in every if "/files/" not in n]  # files attached: their own test
        assert all(n.startswith(f"{uploaded.subject}/") for n in set(every) - set(names))
        assert len(names) == DICOM_FILES
        for name in names:
            subject, study, series, sop = name.split("/")
            assert subject == uploaded.subject and sop.endswith(".dcm"), name
            ds = pydicom.dcmread(io.BytesIO(archive.read(name)))
            assert ds.StudyInstanceUID == study and ds.SeriesInstanceUID == series
            assert str(ds.PatientName) != "Browser^Betty" and ds.PatientID != "WEB-1"
    assert len({n.split("/")[2] for n in names}) == 3


def test_a_member_added_on_the_page_reads_only(
    uploaded: Uploaded, deployment: Deployment, browser: Any
) -> None:
    tab = uploaded.admin
    tab.go("/admin")
    tab.page.wait_for_selector("[data-user=admin]")
    tab.page.fill("#new-username", "reader")
    tab.page.fill("#new-password", "reader-password-long")
    tab.page.click("text=Create user")
    tab.page.wait_for_selector("[data-user=reader]")
    assert tab.check("admin") == []

    tab.go(f"/projects/{PROJECT}/members")
    tab.page.wait_for_selector("[data-member=admin]")
    tab.page.fill("#member-name", "reader")
    tab.page.select_option("#member-role", "collaborator")
    tab.page.click("form[data-add] button")
    tab.page.wait_for_selector("[data-member=reader]")
    assert tab.page.locator("[data-member=reader] select").input_value() == "collaborator"
    tab.page.fill("#member-name", "no-such-person")
    tab.page.click("form[data-add] button")
    tab.page.wait_for_function(
        "() => document.querySelector('[data-outcome]').textContent.includes('no user')"
    )
    assert tab.page.locator("[data-member=admin] button").count() == 0  # not one's own row
    assert tab.page.locator("[data-member=reader] button.secondary").count() == 1
    # a partner without an account: an invitation by e-mail, a link to send
    tab.page.fill("#invite-email", "partner@uni.example")
    tab.page.select_option("#invite-role", "member")
    tab.page.click("form[data-invite] button")
    tab.page.wait_for_selector("[data-invite-url]")
    assert "token=" in tab.page.inner_text("[data-invite-url]")
    mail = tab.page.locator("[data-invitation] a").get_attribute("href") or ""
    assert mail.startswith("mailto:partner%40uni.example?subject="), mail
    assert tab.check("members") == []

    reader = Tab(browser, deployment.url)
    try:
        reader.sign_in("reader", "reader-password-long")
        cells = reader.page.locator("tbody tr td").all_inner_texts()
        assert cells[1] == "collaborator", cells
        reader.go(f"/projects/{PROJECT}")
        actions = reader.page.locator(".actions a").all_inner_texts()
        assert not any(a in ("Upload", "Members") for a in actions), actions
        assert any(a.startswith("Download the project") for a in actions)
        assert reader.page.locator("a[href='/admin']").count() == 0
        for path in (f"/projects/{PROJECT}/upload", f"/projects/{PROJECT}/members", "/admin"):
            answer = reader.go(path)
            assert answer.status == 403, path
            assert reader.page.inner_text("h1") == "Not allowed"
        assert reader.check("forbidden") == []
        # the API says the same whatever a page offers
        made = reader.page.evaluate(
            """async () => {
                const t = await fetch('/auth/session/token', {method: 'POST',
                    headers: {'X-Requested-With': 'giftcloud'}});
                const token = (await t.json()).access_token;
                const r = await fetch('/dicomweb/radiology/studies', {method: 'POST',
                    headers: {Authorization: 'Bearer ' + token,
                              'Content-Type': 'multipart/related; type="application/dicom"'},
                    body: ''});
                return r.status }"""
        )
        assert made == 403

        # the owner makes them a member, then takes the role away: it is gone at once
        tab.go(f"/projects/{PROJECT}/members")
        tab.page.wait_for_selector("[data-member=reader]")
        tab.page.select_option("[data-member=reader] select", "member")
        tab.page.wait_for_function(
            "() => document.querySelector('[data-outcome]').textContent === 'reader is now member.'"
        )
        tab.page.once("dialog", lambda dialog: dialog.accept())
        tab.page.click("[data-member=reader] button")
        tab.page.wait_for_selector("[data-member=reader]", state="detached")
        assert tab.page.locator("[data-member]").count() == 1  # the owner
        deadline = time.monotonic() + 30  # the services hear of revocations within 10 s
        while reader.go(f"/projects/{PROJECT}").status != 403:
            assert time.monotonic() < deadline, "the removed member still reads the project"
            time.sleep(1)
        assert reader.errors == []
    finally:
        reader.close()


def test_an_admin_makes_disables_and_resets_accounts(uploaded: Uploaded) -> None:
    tab = uploaded.admin
    tab.go("/admin")
    tab.page.wait_for_selector("[data-user=admin]")
    tab.page.fill("#new-username", "leaver")
    tab.page.click("text=Create user")  # no password: a link to set one
    tab.page.wait_for_selector("[data-user=leaver]")
    said = tab.page.inner_text("[data-user-outcome]")
    assert said.startswith("Send leaver this link") and "/auth/reset?token=" in said, said
    tab.page.click("[data-user=leaver] button:text-is('Disable')")
    tab.page.wait_for_function(
        "() => document.querySelector('[data-user=leaver] td:nth-child(3)').textContent"
        " === 'disabled'"
    )
    tab.page.click("[data-user=leaver] button:text-is('Enable')")
    tab.page.wait_for_function(
        "() => document.querySelector('[data-user=leaver] td:nth-child(3)').textContent"
        " === 'active'"
    )
    queues = tab.page.locator("#pipeline tbody tr[data-queue]").count()
    assert queues == len(QUEUES), queues  # every consumer queue
    assert "Nothing waits in quarantine." in tab.page.inner_text("#pipeline")
    last_hour = int(tab.page.inner_text("[data-figure=last-hour]"))
    assert last_hour == DICOM_FILES, last_hour
    assert tab.check("admin-pipeline") == []


def test_a_user_without_a_role_sees_neither_the_project_nor_its_urls(
    uploaded: Uploaded, deployment: Deployment, browser: Any
) -> None:
    made = httpx.post(
        f"{deployment.url}/auth/users",
        json={"username": "stranger", "password": "stranger-password-long"},
        headers=deployment.token(),
    )
    assert made.status_code == 201, made.text
    stranger = Tab(browser, deployment.url)
    try:
        stranger.sign_in("stranger", "stranger-password-long")
        assert PROJECT not in stranger.page.inner_text("main")
        assert "no role on any project" in stranger.page.inner_text("main")
        study = uploaded.study_url.rsplit("/", 1)[1]
        for path in (
            f"/projects/{PROJECT}",
            uploaded.study_url,
            f"/projects/{PROJECT}/studies/{study}/series/{SERIES_SCROLL}",
        ):
            answer = stranger.go(path)
            assert answer.status == 403, path
            assert "has no role on project 'radiology'" in stranger.page.inner_text("main")
        for path in (
            f"/dicomweb/{PROJECT}/studies/{study}/thumbnail",
            f"/api/projects/{PROJECT}/download?study={study}",
        ):
            assert stranger.page.request.get(deployment.url + path).status == 403, path
        # nor any of its studies among the arrivals or by search
        for path in ("/studies", f"/studies?q={uploaded.subject}"):
            assert stranger.go(path).status == 200
            listed = stranger.page.inner_text("main")
            assert "in the 0 project(s) you may read" in listed and PROJECT not in listed, listed
        answer = stranger.go("/projects/nothing-here")
        assert answer.status == 404 and stranger.page.inner_text("h1") == "Not found"
        assert stranger.check("not-found") == []
    finally:
        stranger.close()


def test_a_narrow_window_and_the_keyboard(
    uploaded: Uploaded, deployment: Deployment, browser: Any
) -> None:
    narrow = Tab(browser, deployment.url, width=390, height=844)
    try:
        narrow.sign_in(*ADMIN)
        for path, name in ((f"/projects/{PROJECT}", "narrow-project"), ("/", "narrow-projects")):
            narrow.go(path)
            overflow = narrow.page.evaluate(
                "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 1, (path, overflow)
            assert narrow.check(name) == []
        narrow.page.keyboard.press("Tab")
        assert narrow.page.evaluate("() => document.activeElement.textContent") == (
            "Skip to the content"
        )
        narrow.page.keyboard.press("Enter")
        assert narrow.page.evaluate("() => document.activeElement.id") == "main"
    finally:
        narrow.close()


def test_signing_out_ends_the_session(
    uploaded: Uploaded, deployment: Deployment, browser: Any
) -> None:
    tab = Tab(browser, deployment.url)
    try:
        tab.sign_in(*ADMIN)
        with tab.page.expect_navigation():
            tab.page.click("form.signout button")
        assert tab.page.url.endswith("/signin?signed_out=1")
        assert "You are signed out." in tab.page.inner_text("main")
        tab.go(f"/projects/{PROJECT}")
        assert "/signin?next=" in tab.page.url
        tab.page.fill("#username", "admin")
        tab.page.fill("#password", "not the password")
        with tab.page.expect_navigation():
            tab.page.click("form.stacked button[type=submit]")
        assert "Wrong username or password." in tab.page.inner_text("[role=alert]")
        assert tab.check("signin-failed") == []
        tab.page.fill("#username", "admin")
        tab.page.fill("#password", ADMIN[1])
        with tab.page.expect_navigation():
            tab.page.click("form.stacked button[type=submit]")
        assert tab.page.url == f"{deployment.url}/projects/{PROJECT}"  # back where they were
    finally:
        tab.close()


def test_a_zip_dropped_on_the_upload_page_is_opened_and_sent(uploaded: Uploaded) -> None:
    """Last: it adds a study. The page opens the zip itself (stored and deflated entries),
    names what is not DICOM in it, and sends the rest."""
    buffer = io.BytesIO()
    study = "1.2.826.0.1.3680043.9.7.4242.2"
    with zipfile.ZipFile(buffer, "w") as archive:
        for n, method in enumerate((zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)):
            data = synthetic_instance(
                patient="Browser^Betty", patient_id="WEB-1", study_uid=study,
                series_uid=f"{study}.1", sop_uid=f"{study}.1.{n}", rows=16,
            )  # fmt: skip
            archive.writestr(f"scans/IM{n}.dcm", data, compress_type=method)
        archive.writestr("scans/readme.txt", "a note", compress_type=zipfile.ZIP_DEFLATED)
    tab = uploaded.admin
    tab.go(f"/projects/{PROJECT}/upload")
    tab.page.evaluate(
        """async (b64) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], "scans.zip", {type: "application/zip"}));
            const zone = document.querySelector("[data-drop]");
            zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: transfer, bubbles: true}));
            zone.dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true}));
        }""",
        base64.b64encode(buffer.getvalue()).decode(),
    )
    tab.page.wait_for_selector("[data-upload][data-done=true]", timeout=120_000)
    assert tab.page.inner_text("[data-status]") == "Done: 2 new instance(s) archived."
    refused = tab.page.inner_text("[data-refused]")
    assert refused == f"scans.zip/scans/readme.txt: {NOT_DICOM}"
    tab.go(f"/projects/{PROJECT}")
    assert "2 studies match." in tab.page.inner_text("main")


def test_a_batch_refused_whole_still_names_each_file(uploaded: Uploaded, tmp_path: Path) -> None:
    """A batch of which nothing could be stored is answered 400 as a whole; the page still
    names each file with its own reason."""
    bad = tmp_path / "capture.dcm"
    bad.write_bytes(screen_capture(9, said_clean=False))
    tab = uploaded.admin
    tab.go(f"/projects/{PROJECT}/upload")
    tab.page.set_input_files("#files", str(bad))
    tab.page.wait_for_selector("[data-upload][data-done=true]", timeout=60_000)
    assert tab.page.inner_text("[data-status]") == "Done: 0 new instance(s) archived."
    refused = tab.page.inner_text("[data-refused]")
    assert refused.startswith("capture.dcm: refused: the image may carry burned-in text"), refused


def test_the_same_files_sent_again_are_counted_once_and_every_upload_is_listed(
    uploaded: Uploaded, tmp_path: Path
) -> None:
    """Sending the folder again says the instances were there already (the project holds
    them once), names the batches by their files, and the uploads page lists every upload
    with each refused file and its reason, the way out linked."""
    folder = tmp_path / "study-folder"
    write_folder(folder)
    tab = uploaded.admin
    tab.go(f"/projects/{PROJECT}/upload")
    tab.page.set_input_files("#folder", str(folder))
    tab.page.wait_for_selector("[data-upload][data-done=true]", timeout=180_000)
    status = tab.page.inner_text("[data-status]")
    assert status == (
        f"Done: 0 new instance(s) archived, {DICOM_FILES} already in the project (sent before)."
    ), status
    rows = [r.split("\t") for r in tab.page.locator("[data-outcome] tbody tr").all_inner_texts()]
    assert all(r[0].startswith("study-folder/") for r in rows), rows
    assert sum(int(r[3]) for r in rows) == DICOM_FILES, rows  # sent before

    tab.go(f"/projects/{PROJECT}/uploads")
    tab.page.wait_for_selector("[data-uploads][data-loaded=true]", timeout=30_000)
    tab.page.wait_for_function(
        "() => ![...document.querySelectorAll('[data-upload-id] td:last-child')]"
        ".some((td) => td.textContent === '…')",
        timeout=30_000,
    )
    listed = tab.page.inner_text("[data-rows]")
    assert "sent before" in listed, listed
    assert "refused on arrival: the image may carry burned-in text" in listed, listed
    assert tab.page.locator("[data-rows] a", has_text="Open the De-identification page").count()
    assert tab.check("uploads") == []


def test_an_owner_chooses_the_projects_de_identification_on_its_page(
    uploaded: Uploaded, tmp_path: Path
) -> None:
    """The page shows the profile option by option (Clean Descriptors on by default) and the
    burned-in attestations; an owner saves a choice, and the page says who attested."""
    tab = uploaded.admin
    tab.go(f"/projects/{PROJECT}")
    tab.page.click("text=De-identification")
    tab.page.wait_for_url(re.compile(".*/deidentification$"))
    tab.page.wait_for_selector("#option-clean_descriptors")
    assert tab.page.is_checked("#option-clean_descriptors")
    assert not tab.page.is_checked("#attested-SC")
    assert tab.check("deidentification") == []
    tab.page.check("#attested-SC")
    tab.page.click("text=Save")
    tab.page.wait_for_selector("text=Saved: instances that arrive from now on")
    assert f"Attested by {ADMIN[0]}" in tab.page.inner_text("[data-attestations]")
    tab.page.reload()
    tab.page.wait_for_selector("#attested-SC")
    assert tab.page.is_checked("#attested-SC")
    # and the screen capture the folder's upload was refused for now comes in as it is
    tab.go(f"/projects/{PROJECT}/upload")
    capture = tmp_path / "attested-capture.dcm"
    capture.write_bytes(screen_capture(7, said_clean=False))
    tab.page.set_input_files("#files", str(capture))
    tab.page.wait_for_selector("[data-upload][data-done=true]", timeout=60_000)
    assert tab.page.inner_text("[data-status]") == "Done: 1 new instance(s) archived."


def test_an_owner_releases_and_deletes_what_de_identification_refused(
    uploaded: Uploaded, deployment: Deployment
) -> None:
    """The quarantine page lists each refused file with its kind of image and the reason; an
    owner deletes one and, after attesting its kind on the De-identification page, releases
    the other, which is archived. Ingest is held on a profile that attests ultrasound (as
    between an owner's withdrawal and ingest hearing of it), so the engine refuses them."""
    deployment.publish(
        ProfileChanged(project=PROJECT, correlation_id="t", version=999, burned_in_attested=("US",))
    )
    headers = deployment.token()
    files = [ultrasound(f"QUARANTINE-{n}") for n in range(2)]
    sent = deployment.stow(PROJECT, files, headers)
    for _ in range(100):  # ingest hears of the profile
        if sent.status_code == 200:
            break
        time.sleep(0.3)
        sent = deployment.stow(PROJECT, files, headers)
    assert sent.status_code == 200, sent.text
    tab = uploaded.admin
    tab.go(f"/projects/{PROJECT}")
    tab.page.click("text=Quarantine")
    tab.page.wait_for_url(re.compile(".*/quarantine$"))
    rows = tab.page.locator("[data-rows] tr[data-key]")
    for _ in range(100):  # anonymise refuses them
        tab.page.wait_for_selector("[data-quarantine][data-loaded=true]")
        if rows.count() == 2:
            break
        time.sleep(0.3)
        tab.page.reload()
    assert rows.count() == 2, tab.page.inner_text("[data-rows]")
    tab.page.wait_for_function(
        "() => ![...document.querySelectorAll('[data-key] td:nth-child(4)')]"
        ".some((td) => td.textContent === '…')"
    )
    listed = tab.page.inner_text("[data-rows]")
    assert "US · MR Image Storage" in listed and "no BurnedInAnnotation" in listed, listed
    assert "no burned-in text rule covers it" in listed, listed
    assert "QUARANTINE-" not in listed and "Doe" not in listed, listed
    assert tab.check("quarantine") == []

    first, second = (rows.nth(n).get_attribute("data-key") for n in range(2))
    tab.page.once("dialog", lambda dialog: dialog.accept())
    tab.page.check(f"[data-key='{second}'] input")
    tab.page.click("text=Delete the chosen files")
    tab.page.wait_for_selector("text=Deleted 1 file(s).")
    assert rows.count() == 1

    tab.go(f"/projects/{PROJECT}/deidentification")
    tab.page.wait_for_selector("#attested-US")
    tab.page.check("#attested-US")
    tab.page.click("text=Save")
    tab.page.wait_for_selector("text=Saved: instances that arrive from now on")
    tab.go(f"/projects/{PROJECT}/quarantine")
    tab.page.wait_for_selector("[data-quarantine][data-loaded=true]")
    tab.page.check(f"[data-key='{first}'] input")
    tab.page.click("text=Release the chosen files")
    tab.page.wait_for_selector("text=Released 1 file(s)")
    for _ in range(100):  # processed again: archived this time
        tab.page.reload()
        tab.page.wait_for_selector("[data-quarantine][data-loaded=true]")
        if "Nothing is held" in tab.page.inner_text("[data-rows]"):
            break
        time.sleep(0.3)
    assert "Nothing is held" in tab.page.inner_text("[data-rows]")
    upload = sent.headers["X-Giftcloud-Upload"]
    status = httpx.get(f"{deployment.url}/ingest/{PROJECT}/uploads/{upload}", headers=headers)
    assert status.json()["archived"] == 1, status.text
    # the rows came oldest first; which of the two was refused first is the engine's race:
    # the one deleted keeps its rejection, by its number in the upload
    deleted_index = int(str(second).rsplit("/", 1)[1].removesuffix(".dcm"))
    assert [r["index"] for r in status.json()["rejected"]] == [deleted_index], status.text

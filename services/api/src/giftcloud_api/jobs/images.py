"""Derived images a job's algorithm made at this site (segmentations, say): they go through
the site's results path, never to the hub. Each must be DICOM about a study of the job's
cohort; then it is put in ``incoming`` and announced (:class:`ResultMade`), and ingest keeps
it in the results inbox where anonymise maps it back to the hospital's originals and a
reidentifier decides whether it goes to the hospital's node, as for a result pulled from the
hub. The hub learns only that image results were kept for the site's reviewers."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pydicom
from giftcloud_core.bus import Bus
from giftcloud_core.events import ResultMade
from giftcloud_core.storage import ObjectStore
from pydicom.errors import InvalidDicomError

#: an algorithm's images: at most this many files of at most this many bytes each
MAX_IMAGES = 10_000
MAX_IMAGE_BYTES = 512 * 1024**2
#: what the hub is told when a run kept image results here
KEPT = "image results kept at this site for its reviewers (results back to the clinic)"


class BadImage(ValueError):
    """An image output that is not DICOM about the cohort; the message says which and why."""


@dataclass(frozen=True)
class Made:
    path: Path
    sop: str
    series: str
    study: str
    sop_class: str


class Images:
    def __init__(self, store: ObjectStore, incoming: str, bus: Bus) -> None:
        self.store = store
        self.incoming = incoming
        self.bus = bus

    async def keep(self, project: str, job: str, folder: Path, studies: dict[str, str]) -> int:
        """Check every file the algorithm wrote into ``folder`` (``studies``: the cohort's
        study UIDs and their subjects), then store and announce them all; how many. One bad
        file and none is kept (:class:`BadImage`)."""
        made = checked(folder, studies)
        for image in made:
            data = image.path.read_bytes()
            name = hashlib.sha256(f"{job}/{image.sop}".encode()).hexdigest()[:32]
            key = f"results/{project}/made-{name}.dcm"
            await self.store.put(self.incoming, key, data)
            await self.bus.publish(
                ResultMade(
                    project=project,
                    correlation_id=f"job:{job}",
                    key=image.sop,
                    object_key=key,
                    subject=studies[image.study],
                    study_uid=image.study,
                    series_uid=image.series,
                    name=image.sop_class,
                    size=len(data),
                    sha256=hashlib.sha256(data).hexdigest(),
                )
            )
        return len(made)


def checked(folder: Path, studies: dict[str, str]) -> list[Made]:
    """The files under ``folder``, each DICOM with its UIDs and about one of ``studies``."""
    files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
    if len(files) > MAX_IMAGES:
        raise BadImage(f"{len(files)} image outputs: at most {MAX_IMAGES} are kept")
    made = []
    for path in files:
        name = path.relative_to(folder)
        if path.stat().st_size > MAX_IMAGE_BYTES:
            raise BadImage(f"image output {name} is larger than {MAX_IMAGE_BYTES} bytes")
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)  # the header: not the pixels
        except (InvalidDicomError, ValueError, EOFError, OSError) as exc:
            raise BadImage(f"image output {name} is not DICOM: {exc}") from None
        uids = [str(ds.get(k, "")) for k in ("SOPInstanceUID", "SeriesInstanceUID", "SOPClassUID")]
        if not all(uids):
            raise BadImage(f"image output {name} lacks its SOP instance, series or class UID")
        study = str(ds.get("StudyInstanceUID", ""))
        if study not in studies:
            raise BadImage(f"image output {name} is about a study outside the job's cohort")
        made.append(Made(path, uids[0], uids[1], study, uids[2]))
    return made

"""bench/wado: WADO-RS of a series stored as JPEG 2000 lossless, asked with no transfer
syntax (so given as Explicit VR Little Endian: transcoded) and as stored (``*``), from the
five processes behind nginx and from Orthanc with its DICOMweb plugin, in the same run on
the same files. The first read of giftcloud transcodes; the second comes from its
transcoding cache (Orthanc has none: it transcodes each time). Prints seconds and ratios
(Orthanc's time / giftcloud's: above 1, giftcloud is faster).

    uv run python bench/wado.py [--instances 40] [--size 512]

Run from the repository after scripts/test has set the machine up (Orthanc's GDCM plugin,
Debian's orthanc-gdcm, decodes JPEG 2000 for it).
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pydicom
from pydicom.uid import JPEG2000Lossless

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.deployment import deployed  # noqa: E402
from support.infra import Orthanc, Seaweed, wait_for  # noqa: E402
from support.results import ct_series  # noqa: E402

AS_STORED = 'multipart/related; type="application/dicom"; transfer-syntax=*'
DEFAULT = 'multipart/related; type="application/dicom"'


def series(count: int, size: int) -> list[bytes]:
    """A CT series of ``count`` slices of noise-textured anatomy-like pixels, JPEG 2000."""
    rng = np.random.default_rng(7)
    files = []
    for data in ct_series(count, "BENCH-WADO", size=size):
        ds = pydicom.dcmread(io.BytesIO(data))
        yy, xx = np.mgrid[0:size, 0:size]
        body = ((xx - size / 2) ** 2 + (yy - size / 2) ** 2 < (size / 2.3) ** 2) * 1000
        pixels = (body + rng.integers(0, 200, (size, size))).astype(np.uint16)
        ds.PixelData = pixels.tobytes()
        ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
        out = io.BytesIO()
        ds.save_as(out, enforce_file_format=True)
        files.append(out.getvalue())
    return files


def timed(url: str, accept: str, headers: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    with httpx.stream("GET", url, headers={**headers, "Accept": accept}, timeout=600) as answer:
        answer.raise_for_status()
        size = sum(len(chunk) for chunk in answer.iter_bytes())
    return time.perf_counter() - started, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=40)
    parser.add_argument("--size", type=int, default=512, help="rows and columns")
    args = parser.parse_args()
    files = series(args.instances, args.size)
    stored_mb = sum(map(len, files)) / 1e6
    print(f"{args.instances} instances of {args.size}x{args.size}, {stored_mb:.1f} MB as JPEG 2000")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        seaweed = Seaweed(work / "seaweed").start()
        # Orthanc decodes JPEG 2000 with its GDCM plugin (Debian's orthanc-gdcm)
        plugins = [
            f"/usr/share/orthanc/plugins/libOrthanc{name}.so" for name in ("DicomWeb", "Gdcm")
        ]
        orthanc = Orthanc(work / "orthanc", config={"Plugins": plugins}).start()
        try:
            (work / "logs").mkdir()
            with deployed(seaweed, work / "logs") as deployment:
                deployment.create_project("bench")
                headers = deployment.token()
                assert deployment.stow("bench", files, headers).status_code == 200
                wait_for(
                    lambda: deployment.instance_count("bench", headers) == len(files),
                    timeout=600,
                    what="the series archived",
                )
                for data in files:
                    httpx.post(f"{orthanc.url}/instances", content=data).raise_for_status()
                ours = httpx.get(f"{deployment.url}/dicomweb/bench/series", headers=headers).json()[
                    0
                ]
                theirs = httpx.get(f"{orthanc.dicomweb}/series").json()[0]
                path = "studies/{}/series/{}"
                ours_url = f"{deployment.url}/dicomweb/bench/" + path.format(
                    ours["0020000D"]["Value"][0], ours["0020000E"]["Value"][0]
                )
                theirs_url = f"{orthanc.dicomweb}/" + path.format(
                    theirs["0020000D"]["Value"][0], theirs["0020000E"]["Value"][0]
                )
                rows = []
                for name, accept in (("as stored", AS_STORED), ("Explicit VR LE", DEFAULT)):
                    first, size = timed(ours_url, accept, headers)
                    second, _ = timed(ours_url, accept, headers)
                    peer_first, peer_size = timed(theirs_url, accept, {})
                    peer_second, _ = timed(theirs_url, accept, {})
                    rows.append((name, first, second, peer_first, peer_second, size, peer_size))
        finally:
            orthanc.stop()
            seaweed.stop()
    print(f"{'':16}{'giftcloud 1st':>14}{'2nd':>8}{'Orthanc 1st':>13}{'2nd':>8}"
          f"{'ratio 1st':>11}{'ratio 2nd':>11}")  # fmt: skip
    for name, first, second, peer_first, peer_second, size, peer_size in rows:
        print(
            f"{name:16}{first:14.2f}{second:8.2f}{peer_first:13.2f}{peer_second:8.2f}"
            f"{peer_first / first:11.2f}{peer_second / second:11.2f}"
            f"   ({size / 1e6:.1f} MB / {peer_size / 1e6:.1f} MB)"
        )


if __name__ == "__main__":
    main()

"""A re-identified result checked against its IOD before it may leave for the hospital:
dicom3tools' ``dciodvfy`` (Debian's ``dicom3tools``), every ``Error`` it reports a reason."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

#: at most this many of dciodvfy's errors are quoted in a reason
QUOTED = 5


async def iod_errors(data: bytes) -> list[str]:
    """dciodvfy's errors for the file ([] when it conforms); one error saying so when
    dciodvfy is not installed (a result nobody checked does not leave)."""
    binary = shutil.which("dciodvfy")
    if binary is None:
        return ["dciodvfy (dicom3tools) is not installed here: results cannot be validated"]
    with tempfile.TemporaryDirectory(prefix="giftcloud-result-") as folder:
        path = Path(folder) / "result.dcm"
        path.write_bytes(data)
        process = await asyncio.create_subprocess_exec(
            binary,
            "-new",
            str(path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
    errors = [
        line.removeprefix("Error - ").strip()
        for line in output.decode("utf-8", "replace").splitlines()
        if line.startswith("Error")
    ]
    return errors[:QUOTED] + ([f"and {len(errors) - QUOTED} more"] if len(errors) > QUOTED else [])

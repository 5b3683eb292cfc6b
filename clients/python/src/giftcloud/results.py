"""``giftcloud results``: a project's results — files that are not DICOM attached with their
provenance, and a study's DICOM results (segmentations, reports) with what they derive
from. DICOM results themselves are sent as any instance: ``giftcloud send``."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from urllib.parse import quote, unquote

from giftcloud.commands import session_for, table
from giftcloud.session import DONE, CommandError


def _is_dicom(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(132)[128:] == b"DICM"


def ls(args: argparse.Namespace) -> int:
    """The files attached in a project (or a study's, with its DICOM results)."""
    session = session_for(args)
    base = f"/api/projects/{quote(args.project)}"
    params = {"study": args.study} if args.study else {}
    files = session.get(f"{base}/files", f"listing {args.project}'s files", params=params).json()
    if args.study:
        found = session.get(
            f"{base}/studies/{quote(args.study)}/results", f"listing study {args.study}'s results"
        ).json()
        table(
            [
                [r["sop_uid"], r["kind"], r["series_description"], _sources(r["sources"])]
                for r in found
            ],
            ["RESULT (SOP INSTANCE UID)", "KIND", "SERIES", "DERIVED FROM"],
        )
        print()
    table(
        [
            [
                f["id"],
                f["name"],
                str(f["size"]),
                f["series_uid"] or f["study_uid"] or f["subject"] or "(project)",
                " ".join(x for x in (f["tool"], f["tool_version"]) if x),
                f["created_by"],
            ]
            for f in files
        ],
        ["FILE", "NAME", "BYTES", "ATTACHED TO", "TOOL", "BY"],
    )
    return DONE


def _sources(sources: list[dict[str, object]]) -> str:
    return ", ".join(f"{s['series_uid']} ({s['instances']})" for s in sources)


def send(args: argparse.Namespace) -> int:
    """Attach a file to the project, a subject, a study or a series, with its provenance."""
    path = Path(args.file)
    if not path.is_file():
        raise CommandError(f"{path}: no such file")
    if _is_dicom(path):
        raise CommandError(
            f"{path} is DICOM: send it with giftcloud send --project {args.project} {path}"
            " (a DICOM result is checked against the instances it derives from)"
        )
    session = session_for(args)
    form = {
        "subject": args.subject or "",
        "study": args.study or "",
        "series": args.series or "",
        "inputs": " ".join(args.input or []),
        "tool": args.tool,
        "tool_version": args.tool_version,
        "description": args.description,
    }
    with path.open("rb") as handle:
        made = session.request(
            "POST",
            f"/api/projects/{quote(args.project)}/files",
            f"attaching {path.name}",
            files={"file": (path.name, handle, "application/octet-stream")},
            data=form,
        ).json()
    where = made["series_uid"] or made["study_uid"] or made["subject"] or args.project
    print(f"attached {made['name']} to {where} as file {made['id']} (sha256 {made['sha256']})")
    return DONE


def download(args: argparse.Namespace) -> int:
    """A file, whole and checked against its SHA-256, into DEST (a folder: under its name)."""
    session = session_for(args)
    answer = session.get(
        f"/api/projects/{quote(args.project)}/files/{quote(args.id)}", f"fetching file {args.id}"
    )
    disposition = answer.headers.get("Content-Disposition", "")
    name = unquote(disposition.split("filename*=UTF-8''", 1)[-1]) if "''" in disposition else ""
    name = Path(name).name or args.id  # the server's name for it, never a path
    dest = Path(args.dest)
    target = dest / name if dest.is_dir() else dest
    if hashlib.sha256(answer.content).hexdigest() != answer.headers.get("X-Giftcloud-SHA256"):
        raise CommandError(f"file {args.id} arrived damaged: its SHA-256 differs; try again")
    partial = target.with_name(target.name + ".part")
    partial.write_bytes(answer.content)
    partial.replace(target)
    print(f"downloaded {name} ({len(answer.content)} bytes) into {target}")
    return DONE


def inbox(args: argparse.Namespace) -> int:
    """At a site: the results pulled back from the hub, each with its state and why
    (reidentifiers)."""
    session = session_for(args)
    params = {"state": args.state} if args.state else {}
    found = session.get(
        f"/ingest/{quote(args.project)}/returns/items",
        f"listing {args.project}'s results from the hub",
        params=params,
    ).json()
    table(
        [
            [
                r["key"],
                f"file {r['name']}" if r["kind"] == "file" else "DICOM",
                r["subject"],
                r["state"],
                (r["status"] or r["reason"])[:100],
            ]
            for r in found
        ],
        ["RESULT", "KIND", "SUBJECT", "STATE", "WHY / ANSWER"],
    )
    return DONE


def decide(args: argparse.Namespace) -> int:
    """Approve a waiting result (a DICOM one to ``--to`` a hospital node), or decline it."""
    session = session_for(args)
    base = f"/ingest/{quote(args.project)}/returns/items/{quote(args.key)}"
    if args.decline is not None:
        body: dict[str, str] = {"reason": args.decline}
        how = "decline"
    else:
        body, how = {"destination": args.to or ""}, "approve"
    done = session.request("POST", f"{base}/{how}", f"{how.rstrip('e')}ing {args.key}", json=body)
    item = done.json()
    if item["state"] == "approved":
        print(f"approved {args.key}: it is being delivered to {item['destination']}")
    elif item["state"] == "declined":
        print(f"declined {args.key}: it will not leave this site")
    else:
        print(
            f"approved {args.key}: download it from {session.url}{base}/content"
            " (or on the project's Results to approve page)"
        )
    return DONE

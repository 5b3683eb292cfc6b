"""``giftcloud login / logout / projects / ls / download``: the user's view of a server."""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

import httpx

from giftcloud.session import (
    DONE,
    TROUBLE,
    CommandError,
    Credentials,
    Session,
    default_url,
    detail,
    normal,
    open_session,
    reaching,
    read_password,
    sign_in,
)


def session_for(args: argparse.Namespace) -> Session:
    return open_session(
        default_url(getattr(args, "url", None)),
        username=getattr(args, "sign_in_user", None),
        api_key=getattr(args, "api_key", None),
    )


def login(args: argparse.Namespace) -> int:
    url = normal(args.server or default_url(args.url))
    username = (
        args.username
        or os.environ.get("GIFTCLOUD_USERNAME")
        or input(f"username on {url}: ").strip()
    )
    password = os.environ.get("GIFTCLOUD_PASSWORD") or read_password(f"password of {username}: ")
    entry = sign_in(url, username, password)
    Credentials().put(url, entry)
    print(f"signed in to {url} as {entry['username']}")
    return DONE


def logout(args: argparse.Namespace) -> int:
    url = normal(args.server or default_url(args.url))
    credentials = Credentials()
    entry = credentials.get(url)
    if entry is None:
        print(f"not signed in to {url}")
        return DONE
    if entry.get("refresh_token"):  # ends the sign-in at the server too
        with reaching(url):
            httpx.post(f"{url}/auth/logout", json={"refresh_token": entry["refresh_token"]})
    credentials.put(url, None)
    print(f"signed out of {url}")
    return DONE


def table(rows: list[list[str]], header: list[str], empty: str = "") -> None:
    """Rows under a header, in columns; ``empty`` said instead when there are none."""
    if not rows and empty:
        print(empty)
        return
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print(
            "  ".join(
                str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)
            ).rstrip()
        )


def projects(args: argparse.Namespace) -> int:
    session = session_for(args)
    found = session.get("/api/projects", "listing projects").json()
    if not found:
        print(f"{session.who} has no role on any project at {session.url}")
        return DONE
    table([[p["name"], p["role"] or "", p["title"]] for p in found], ["PROJECT", "ROLE", "TITLE"])
    return DONE


def _value(item: dict[str, Any], tag: str) -> str:
    values = item.get(tag, {}).get("Value", [""])
    return str(values[0]) if values else ""


def _search(
    session: Session, path: str, what: str, params: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Every result of a QIDO-RS search, page after page."""
    results: list[dict[str, Any]] = []
    page = 500
    while True:
        response = session.get(
            path, what, params={**(params or {}), "limit": page, "offset": len(results)}
        )
        found = [] if response.status_code == 204 else list(response.json())
        results.extend(found)
        # a short page is the last, unless the server cut it to its own maximum (it warns)
        if not found or (len(found) < page and "warning" not in response.headers):
            return results


def _studies(
    session: Session, project: str, subject: str | None, study: str | None
) -> list[dict[str, Any]]:
    params: dict[str, Any] = {}
    if subject:
        params["PatientID"] = subject
    if study:
        params["StudyInstanceUID"] = study
    return _search(session, f"/dicomweb/{quote(project)}/studies", f"searching {project}", params)


def _series(session: Session, project: str, study: str) -> list[dict[str, Any]]:
    path = f"/dicomweb/{quote(project)}/studies/{study}/series"
    return _search(session, path, f"searching study {study}")


def ls(args: argparse.Namespace) -> int:
    """PROJECT: its subjects; PROJECT SUBJECT: their studies; PROJECT SUBJECT STUDY: its series."""
    session = session_for(args)
    project = quote(args.project)
    if args.subject is None:
        subjects = session.get(
            f"/api/projects/{project}/subjects", f"listing {args.project}"
        ).json()
        table([[s["label"], str(s["studies"])] for s in subjects], ["SUBJECT", "STUDIES"])
    elif args.study is None:
        studies = session.get(
            f"/api/projects/{project}/subjects/{quote(args.subject)}/studies",
            f"listing {args.subject}",
        ).json()
        if not studies:
            raise CommandError(
                f"no subject {args.subject!r} in {args.project} (giftcloud ls {args.project}"
                " lists its subjects)"
            )
        table(
            [
                [
                    s["study_uid"],
                    s["study_date"],
                    ",".join(s["modalities"]),
                    str(s["series"]),
                    str(s["instances"]),
                ]
                for s in studies
            ],
            ["STUDY", "DATE", "MODALITIES", "SERIES", "INSTANCES"],
        )
    else:
        series = _series(session, args.project, args.study)
        table(
            [
                [
                    _value(s, "0020000E"),
                    _value(s, "00080060"),
                    _value(s, "00200011"),
                    _value(s, "00201209"),
                    _value(s, "0008103E"),
                ]
                for s in series
            ],
            ["SERIES", "MODALITY", "NUMBER", "INSTANCES", "DESCRIPTION"],
        )
    return DONE


def download(args: argparse.Namespace) -> int:
    """Every instance of the project (or of a subject, study or series) into
    DEST/subject/study/series/sop.dcm; what is there already is not fetched again."""
    dest = Path(args.dest)
    if dest.exists() and not dest.is_dir():
        raise CommandError(f"{dest} is a file: download into a folder (it is made if missing)")
    session = session_for(args)
    wanted: list[tuple[str, str, str]] = []  # (subject, study, series)
    for study in _studies(session, args.project, args.subject, args.study):
        subject, study_uid = _value(study, "00100020"), _value(study, "0020000D")
        for series in _series(session, args.project, study_uid):
            series_uid = _value(series, "0020000E")
            if args.series is None or series_uid == args.series:
                wanted.append((subject, study_uid, series_uid))
    if not wanted:
        raise CommandError(
            f"nothing in {args.project} matches: check the project, subject, study or series"
        )
    instances: list[tuple[Path, str]] = []
    for subject, study_uid, series_uid in wanted:
        path = f"/dicomweb/{quote(args.project)}/studies/{study_uid}/series/{series_uid}/instances"
        folder = dest / _safe(subject) / study_uid / series_uid
        for item in _search(session, path, f"listing series {series_uid}"):
            sop = _value(item, "00080018")
            instances.append((folder / f"{sop}.dcm", f"{path}/{sop}"))
    todo = [(t, u) for t, u in instances if not t.is_file()]
    skipped = len(instances) - len(todo)
    by_series: dict[Path, list[tuple[Path, str]]] = {}
    for target, url in todo:
        by_series.setdefault(target.parent, []).append((target, url))
    progress = Progress(len(todo), "downloaded")
    try:
        for folder, missing in by_series.items():
            if len(missing) == 1:  # one file: as itself
                target, url = missing[0]
                with reaching(session.url):
                    # as archived, byte for byte, as the zips of the other series
                    accept = "application/dicom; transfer-syntax=*"
                    response = session.http.get(url, headers={"Accept": accept})
                session.check(response, f"fetching {target.name}")
                _keep(target, response.content)
                progress.step(len(response.content))
            else:  # more: the series as one zip, streamed to disk, what is missing taken out
                _from_zip(session, args.project, folder, [t for t, _ in missing], progress)
    except KeyboardInterrupt:
        progress.done()
        print(
            f"interrupted after {progress.count} of {len(todo)}: run the same command again to fetch the rest"
        )
        return 130
    progress.done()
    note = f"; {skipped} were there already" if skipped else ""
    print(f"downloaded {len(todo)} instance(s) into {dest}{note}")
    return DONE


def _safe(label: str) -> str:
    """A subject label as one safe path component (a label from a hub's senders could be
    anything)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", label).lstrip(".") or "_"


def _keep(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    partial.write_bytes(data)
    partial.replace(target)  # a file under its name is always whole: resumable


def _from_zip(
    session: Session, project: str, folder: Path, targets: list[Path], progress: Progress
) -> None:
    study_uid, series_uid = folder.parent.name, folder.name
    wanted = {t.name: t for t in targets}
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder) as spool:
        params = {"study": study_uid, "series": series_uid}
        with (
            reaching(session.url),
            session.http.stream(
                "GET", f"/api/projects/{quote(project)}/download", params=params
            ) as response,
        ):
            if response.status_code >= 400:
                response.read()
                session.check(response, f"fetching series {series_uid}")
            for chunk in response.iter_bytes(1 << 20):
                spool.write(chunk)
        spool.seek(0)
        with zipfile.ZipFile(spool) as archive:
            for info in archive.infolist():
                target = wanted.get(PurePosixPath(info.filename).name)
                if target is not None and not target.is_file():
                    data = archive.read(info)
                    _keep(target, data)
                    progress.step(len(data))


class Progress:
    """A progress line on stderr: count, rate, bytes."""

    def __init__(self, total: int, what: str) -> None:
        self.total, self.what, self.count, self.bytes = total, what, 0, 0
        self.started = time.monotonic()
        self.tty = sys.stderr.isatty()
        self._shown = 0.0

    def step(self, size: int = 0, count: int = 1) -> None:
        self.count += count
        self.bytes += size
        now = time.monotonic()
        if now - self._shown < (0.2 if self.tty else 5) and self.count < self.total:
            return
        self._shown = now
        rate = self.count / max(now - self.started, 1e-6)
        width = 30
        filled = width * self.count // max(self.total, 1)
        line = (
            f"[{'#' * filled}{'.' * (width - filled)}] {self.count}/{self.total} {self.what}"
            f"  {rate:.0f}/s  {self.bytes / 1e6:.1f} MB"
        )
        print(
            ("\r" if self.tty else "") + line,
            end="" if self.tty else "\n",
            file=sys.stderr,
            flush=True,
        )

    def done(self) -> None:
        if self.tty and self.count:
            print(file=sys.stderr)


def uploads(args: argparse.Namespace) -> int:
    """PROJECT: its latest uploads and what became of them; PROJECT UPLOAD: each file refused
    on arrival and each rejection, with its reason (files are numbered in the order they were
    sent, from 0; the SOP Instance UID where it could be read)."""
    session = session_for(args)
    project = quote(args.project)
    if args.upload is None:
        found = session.get(f"/ingest/{project}/uploads", f"listing {args.project}'s uploads")
        rows = [
            [
                u["id"],
                u["created_at"][:19].replace("T", " "),
                u["username"],
                u["state"],
                str(u["accepted"]),
                str(u["failed"]),
            ]
            for u in found.json()
        ]
        table(rows, ["UPLOAD", "CREATED (UTC)", "BY", "STATE", "ACCEPTED", "REFUSED"])
        return DONE
    status = session.get(
        f"/ingest/{project}/uploads/{quote(args.upload)}", f"reading upload {args.upload}"
    ).json()
    print(
        f"upload {status['id']} ({status['state']}): {status['accepted']} accepted,"
        f" {status['refused']} refused at once, {status['archived']} archived"
        f" ({status['already']} of them in the project before),"
        f" {len(status['rejected'])} rejected after de-identification, {status['pending']} pending"
    )
    for refused in status["refusals"]:
        uid = f" ({refused['sop_uid']})" if refused["sop_uid"] else ""
        print(f"refused: file {refused['index']}{uid}: {refused['reason']}")
    for rejected in status["rejected"]:
        print(f"rejected: file {rejected['index']}: {rejected['reason']}")
    return DONE


def token(args: argparse.Namespace) -> int:
    """The access token of the stored sign-in (refreshed if it has expired), for curl and
    DICOMweb clients: ``curl -H "Authorization: Bearer $(giftcloud token)" ...``."""
    session = session_for(args)
    print(session.http.headers["Authorization"].removeprefix("Bearer "))
    return DONE


def whoami(args: argparse.Namespace) -> int:
    session = session_for(args)
    me = session.get("/auth/me", "asking who you are").json()
    print(f"{me['username']} at {session.url}; site roles: {', '.join(me['site_roles']) or 'none'}")
    return DONE


__all__ = ["TROUBLE", "detail", "download", "login", "logout", "ls", "projects", "whoami"]

"""``giftcloud anonymise SRC... DEST``: de-identify files offline with the site's engine.

Writes DEST/{subject}/{study}/{series}/{instance}.dcm (new UIDs), a JSON report beside
DEST (``DEST.report.json``: it names source files, which may identify, so it is kept
out of DEST), and exits non-zero when anything was rejected.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from giftcloud_deid import (
    DEFAULT_PROFILE,
    Deidentifier,
    Profile,
    ProfileError,
    ProjectKeys,
    Rejected,
)
from giftcloud_deid.keystore import KeyStore, KeyStoreError, site_keys


@dataclass(frozen=True)
class Outcome:
    source: str
    subject: str = ""
    output: str = ""
    reason: str = ""
    pixels_cleaned: str = ""


_engine: Deidentifier | None = None
_dest: Path | None = None


def _start(keys: ProjectKeys, profile: Profile, dest: Path) -> None:
    global _engine, _dest  # one engine per worker process, built once
    _engine, _dest = Deidentifier(keys, profile), dest


def _one(path: str) -> Outcome:
    assert _engine is not None
    assert _dest is not None
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return Outcome(path, reason=f"cannot read: {exc.strerror}")
    try:
        result = _engine.deidentify(data)
    except Rejected as exc:
        return Outcome(path, reason=exc.reason)
    if not result.data:  # a dry run
        changes = len(result.changes)
        return Outcome(path, subject=result.subject, output=f"(dry run: {changes} changes)")
    target = _dest / result.subject / result.study_uid / result.series_uid / f"{result.sop_uid}.dcm"
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".part")
    temporary.write_bytes(result.data)
    temporary.replace(target)  # never a half-written file under its final name
    return Outcome(path, result.subject, str(target), pixels_cleaned=result.pixels_cleaned)


def _files(sources: list[str]) -> Iterator[str]:
    for source in sources:
        path = Path(source)
        if path.is_dir():
            yield from (str(p) for p in sorted(path.rglob("*")) if p.is_file())
        else:
            yield str(path)


class Progress:
    def __init__(self, total: int) -> None:
        self.total, self.done, self.rejected = total, 0, 0
        self.tty = sys.stderr.isatty()
        self.started = time.monotonic()
        self._last = -1

    def step(self, rejected: bool) -> None:
        self.done += 1
        self.rejected += rejected
        tenth = self.done * 10 // max(self.total, 1)
        if not self.tty and tenth == self._last and self.done != self.total:
            return
        self._last = tenth
        width = 30
        filled = width * self.done // max(self.total, 1)
        rate = self.done / max(time.monotonic() - self.started, 1e-6)
        line = (
            f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}"
            f"  {self.rejected} rejected  {rate:.0f} files/s"
        )
        print(("\r" if self.tty else "") + line, end="" if self.tty else "\n", file=sys.stderr)
        if self.tty and self.done == self.total:
            print(file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    dest = Path(args.dest)
    try:
        profile = Profile.load(Path(args.profile)) if args.profile else DEFAULT_PROFILE
        keys = site_keys(args.project) or KeyStore(Path(args.keys).expanduser()).keys(args.project)
    except (ProfileError, KeyStoreError, OSError) as exc:
        print(f"giftcloud anonymise: {exc}", file=sys.stderr)
        return 2
    files = list(_files(args.sources))
    if not files:
        print("giftcloud anonymise: no files found", file=sys.stderr)
        return 2
    dest.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    progress = Progress(len(files))
    outcomes: list[Outcome] = []
    workers = max(1, args.workers)
    if workers == 1:
        _start(keys, profile, dest)
        for path in files:
            outcomes.append(_one(path))
            progress.step(bool(outcomes[-1].reason))
    else:
        with ProcessPoolExecutor(
            workers, initializer=_start, initargs=(keys, profile, dest)
        ) as pool:
            for outcome in pool.map(_one, files, chunksize=16):
                outcomes.append(outcome)
                progress.step(bool(outcome.reason))
    rejected = [o for o in outcomes if o.reason]
    report = {
        "project": args.project,
        "profile": profile.description,
        "key_id": keys.key_id,
        "files": len(outcomes),
        "deidentified": len(outcomes) - len(rejected),
        "rejected": len(rejected),
        "subjects": len({o.subject for o in outcomes if o.subject}),
        "pixels_cleaned": sum(1 for o in outcomes if o.pixels_cleaned),
        "seconds": round(time.monotonic() - started, 3),
        "rejections": [{"file": o.source, "reason": o.reason} for o in rejected],
    }
    report_path = Path(args.report) if args.report else dest.with_name(dest.name + ".report.json")
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"de-identified {report['deidentified']} of {report['files']} file(s) "
        f"({report['subjects']} subject(s)); {len(rejected)} rejected; report: {report_path}"
    )
    return 1 if rejected else 0


def vault_keys(args: argparse.Namespace) -> int:
    """Write a new vault key pair: the private key for the re-identification officer only."""
    from giftcloud_deid.vault import generate_keypair

    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    private_path, public_path = folder / "vault.pem", folder / "vault.pub"
    if private_path.exists() or public_path.exists():
        print(f"giftcloud vault-keys: {folder} already holds a key pair", file=sys.stderr)
        return 2
    private, public = generate_keypair()
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(private)
    public_path.write_bytes(public)
    print(
        f"wrote {public_path} (GIFTCLOUD_ANONYMISE__VAULT_PUBLIC_KEY, for every anonymise) and "
        f"{private_path} (mode 0600: only where re-identification is served)"
    )
    return 0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "anonymise", help="de-identify DICOM files offline (files or folder trees)"
    )
    parser.add_argument("sources", nargs="+", metavar="SRC")
    parser.add_argument("dest", metavar="DEST")
    parser.add_argument("--project", default="local")
    parser.add_argument("--profile", default=None, help="a project profile (YAML)")
    parser.add_argument(
        "--keys",
        default=os.environ.get("GIFTCLOUD_KEYS", "~/.giftcloud/keys"),
        help="the local key store (created on first use); GIFTCLOUD_ANONYMISE__SECRET wins",
    )
    parser.add_argument("--report", default=None, help="default: DEST.report.json")
    parser.add_argument("--workers", type=int, default=1, help="processes")
    parser.set_defaults(run=run)

    keys = commands.add_parser("vault-keys", help="make the re-identification vault's key pair")
    keys.add_argument("folder")
    keys.set_defaults(run=vault_keys)

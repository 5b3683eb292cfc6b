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
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from giftcloud_deid import (
    DEFAULT_NAMESPACE,
    DEFAULT_PROFILE,
    Deidentifier,
    NamespaceError,
    PatientNamespace,
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
    # a dry run: who the subject is, and why
    namespace: str = ""
    patient: str = ""
    issuers: tuple[str, ...] = ()


_engine: Deidentifier | None = None
_dest: Path | None = None


#: the CLI's factory of subcommands: (name, help, run) -> its parser
Command = Callable[[str, str, Callable[[argparse.Namespace], int]], argparse.ArgumentParser]


def _start(keys: ProjectKeys, profile: Profile, dest: Path, namespace: PatientNamespace) -> None:
    global _engine, _dest  # one engine per worker process, built once
    _engine, _dest = Deidentifier(keys, profile, namespace=namespace), dest


def _key(path: str) -> Outcome:
    """A dry run: the file's subject under the namespace, nothing written."""
    assert _engine is not None
    try:
        key = _engine.patient_key(Path(path).read_bytes())
    except OSError as exc:
        return Outcome(path, reason=f"cannot read: {exc.strerror}")
    except Rejected as exc:
        return Outcome(path, reason=exc.reason)
    return Outcome(
        path,
        subject=key.subject,
        namespace=key.namespace,
        patient=key.patient,
        issuers=key.issuers,
    )


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


def site_namespace(option: str | None, keys: Path) -> tuple[PatientNamespace, str]:
    """The site's patient namespace and where it came from: --namespace, then
    GIFTCLOUD_ANONYMISE__NAMESPACE_FILE (as the service reads it), then the key store's
    namespace.yaml; else every patient is the site's own."""
    given = option or os.environ.get("GIFTCLOUD_ANONYMISE__NAMESPACE_FILE")
    if given:
        return PatientNamespace.load(Path(given).expanduser()), given
    beside = keys / "namespace.yaml"
    if beside.is_file():
        return PatientNamespace.load(beside), str(beside)
    return DEFAULT_NAMESPACE, "default (every patient is the site's own)"


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


Found = list[dict[str, Any]]


def _analysis(outcomes: list[Outcome]) -> tuple[Found, Found]:
    """Which inputs a namespace merges into one subject, and which patient IDs it splits."""
    spellings: dict[str, set[tuple[str, ...]]] = {}
    files: dict[str, int] = {}
    namespaces: dict[str, dict[str, set[tuple[str, ...]]]] = {}
    for o in outcomes:
        if o.reason:
            continue
        spellings.setdefault(o.subject, set()).add(o.issuers)
        files[o.subject] = files.get(o.subject, 0) + 1
        namespaces.setdefault(o.patient, {}).setdefault(o.namespace, set()).add(o.issuers)
    patients = {o.subject: o.patient for o in outcomes if not o.reason}
    return (
        [
            {
                "subject": subject,
                "patient_id": patients[subject],
                "issuer_spellings": sorted([list(i) for i in named]),
                "files": files[subject],
            }
            for subject, named in sorted(spellings.items())
            if len(named) > 1
        ],
        [
            {
                "patient_id": patient,
                "namespaces": {
                    ns: sorted([list(i) for i in named]) for ns, named in sorted(by.items())
                },
            }
            for patient, by in sorted(namespaces.items())
            if len(by) > 1
        ],
    )


def run(args: argparse.Namespace) -> int:
    dest = Path(args.dest)
    keys_folder = Path(args.keys).expanduser()
    try:
        profile = Profile.load(Path(args.profile)) if args.profile else DEFAULT_PROFILE
        keys = site_keys(args.project) or KeyStore(keys_folder).keys(args.project)
        namespace, namespace_from = site_namespace(args.namespace, keys_folder)
    except (ProfileError, KeyStoreError, NamespaceError, OSError) as exc:
        print(f"giftcloud anonymise: {exc}", file=sys.stderr)
        return 2
    if profile.namespace is not None:
        namespace, namespace_from = profile.namespace, f"the profile {args.profile}"
    files = list(_files(args.sources))
    if not files:
        print("giftcloud anonymise: no files found", file=sys.stderr)
        return 2
    if not args.dry_run:
        dest.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    progress = Progress(len(files))
    outcomes: list[Outcome] = []
    workers = max(1, args.workers or available_cpus())
    work = _key if args.dry_run else _one
    setup = (keys, profile, dest, namespace)
    if workers == 1:
        _start(*setup)
        for path in files:
            outcomes.append(work(path))
            progress.step(bool(outcomes[-1].reason))
    else:
        with ProcessPoolExecutor(workers, initializer=_start, initargs=setup) as pool:
            for outcome in pool.map(work, files, chunksize=16):
                outcomes.append(outcome)
                progress.step(bool(outcome.reason))
    rejected = [o for o in outcomes if o.reason]
    report_path = Path(args.report) if args.report else dest.with_name(dest.name + ".report.json")
    if args.dry_run:
        return _dry_run_report(args, outcomes, namespace, namespace_from, report_path, workers)
    report = {
        "project": args.project,
        "profile": profile.description,
        "key_id": keys.key_id,
        "patient_namespace": {
            **namespace.description(),
            "fingerprint": namespace.fingerprint,
            "from": namespace_from,
        },
        "workers": workers,
        "files": len(outcomes),
        "deidentified": len(outcomes) - len(rejected),
        "rejected": len(rejected),
        "subjects": len({o.subject for o in outcomes if o.subject}),
        "pixels_cleaned": sum(1 for o in outcomes if o.pixels_cleaned),
        "seconds": round(time.monotonic() - started, 3),
        "rejections": [{"file": o.source, "reason": o.reason} for o in rejected],
    }
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"de-identified {report['deidentified']} of {report['files']} file(s) "
        f"({report['subjects']} subject(s)); {len(rejected)} rejected; {workers} worker(s);"
        f" report: {report_path}"
    )
    return 1 if rejected else 0


def _dry_run_report(
    args: argparse.Namespace,
    outcomes: list[Outcome],
    namespace: PatientNamespace,
    namespace_from: str,
    path: Path,
    workers: int,
) -> int:
    """How many subjects a folder yields under the namespace, which inputs it merges and
    which it splits, and what it refuses; nothing is de-identified or written but the
    report (it names patient IDs: it is made readable by its owner only)."""
    rejected = [o for o in outcomes if o.reason]
    merged, split = _analysis(outcomes)
    report = {
        "dry_run": True,
        "project": args.project,
        "patient_namespace": {
            **namespace.description(),
            "fingerprint": namespace.fingerprint,
            "from": namespace_from,
        },
        "workers": workers,
        "files": len(outcomes),
        "subjects": len({o.subject for o in outcomes if o.subject}),
        "merged": merged,
        "split": split,
        "refused": [{"file": o.source, "reason": o.reason} for o in rejected],
    }
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(json.dumps(report, indent=2) + "\n")
    print(
        f"dry run: {report['files']} file(s) make {report['subjects']} subject(s) under patient"
        f" namespace {namespace.fingerprint} ({namespace_from})"
    )
    for entry in merged:
        spellings = ", ".join(
            repr(" / ".join(s) or "(no issuer)") for s in entry["issuer_spellings"]
        )
        print(f"  merged: patient {entry['patient_id']} written as {spellings}: one subject")
    for entry in split:
        names = ", ".join(entry["namespaces"])
        print(f"  split: patient ID {entry['patient_id']} in namespaces {names}: one subject each")
    for o in rejected:
        print(f"  refused: {o.source}: {o.reason}")
    print(f"report: {path}")
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


def add_parser(command: Command) -> None:
    """``giftcloud anonymise`` and ``giftcloud vault-keys``, made by the CLI's ``command``."""
    parser = command(
        "anonymise",
        "de-identify DICOM files offline (files or folder trees) into DEST, with a report",
        run,
    )
    parser.add_argument("sources", nargs="+", metavar="SRC", help="DICOM files or folders")
    parser.add_argument("dest", metavar="DEST", help="the folder the results go to")
    parser.add_argument(
        "--project", default="local", help="the project whose keys and pseudonyms are used"
    )
    parser.add_argument("--profile", default=None, help="a project profile (YAML)")
    parser.add_argument(
        "--keys",
        default=os.environ.get("GIFTCLOUD_KEYS", "~/.giftcloud/keys"),
        help="the local key store (created on first use); GIFTCLOUD_ANONYMISE__SECRET wins",
    )
    parser.add_argument("--report", default=None, help="default: DEST.report.json")
    parser.add_argument(
        "--namespace",
        default=None,
        help="the site's patient namespace (YAML); default GIFTCLOUD_ANONYMISE__NAMESPACE_FILE,"
        " then KEYS/namespace.yaml, then every patient the site's own",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="write nothing: report the subjects the files make and which inputs merge or split",
    )
    parser.add_argument(
        "--workers", type=int, default=0, help="processes (default: the CPUs available)"
    )

    keys = command("vault-keys", "make the re-identification vault's key pair", vault_keys)
    keys.add_argument(
        "folder", help="where vault.pem (mode 0600) and vault.pub are written; must not hold them"
    )

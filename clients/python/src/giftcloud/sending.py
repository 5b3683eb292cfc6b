"""``giftcloud send``: files, folders, zip files and DICOMDIR media into a project by STOW-RS.

Every file that is not sent is named with the reason: refused here (not DICOM, not
de-identifiable with ``--deidentify``), refused by the server, or rejected by it after
de-identification (it waits for each upload's outcome unless ``--no-wait``). What was
archived is remembered (by content), so a second run sends only what is new.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from giftcloud.client import PART_INDEX, WHOLE_REASON, multipart_related, stow_reasons
from giftcloud.commands import Progress, session_for
from giftcloud.session import (
    DONE,
    INTERRUPTED,
    REFUSED,
    CommandError,
    Session,
    reaching,
    state_folder,
)


@dataclass
class Item:
    """One file to send: where it came from, and how to read it."""

    name: str
    read: Callable[[], bytes]
    digest: str = ""
    outcome: str = ""  # archived | rejected | refused | skipped | stored
    reason: str = ""


def _from_zip(path: Path) -> Iterator[Item]:
    with zipfile.ZipFile(path) as archive:
        for member in sorted(archive.namelist()):
            if member.endswith("/") or Path(member).name.upper() == "DICOMDIR":
                continue

            def read(member: str = member) -> bytes:
                with zipfile.ZipFile(path) as again:
                    return again.read(member)

            yield Item(f"{path}:{member}", read)


def collect(sources: list[str]) -> list[Item]:
    """Files under the sources (folders walked, zip files opened; DICOMDIR index files left
    out: the files they index are in the tree); a source that does not exist is an error."""
    items: list[Item] = []
    for source in sources:
        path = Path(source)
        if not path.exists():
            raise CommandError(f"{source}: no such file or folder")
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if file.name.upper() == "DICOMDIR":
                continue
            if zipfile.is_zipfile(file) and file.read_bytes()[128:132] != b"DICM":
                items.extend(_from_zip(file))
            else:
                items.append(Item(str(file), file.read_bytes))
    return items


class Sent:
    """What a (server, project) archived from this machine, by the files' SHA-256: a second
    run of the same folder sends nothing of it again."""

    def __init__(self, url: str, project: str) -> None:
        key = hashlib.sha256(f"{url}|{project}".encode()).hexdigest()[:24]
        self.path = state_folder() / "sent" / f"{key}.json"
        try:
            self.archived: set[str] = set(json.loads(self.path.read_text())["archived"])
        except (OSError, ValueError, KeyError):
            self.archived = set()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"archived": sorted(self.archived)}))
        temporary.replace(self.path)


@dataclass
class Upload:
    upload_id: str
    parts: dict[int, Item] = field(default_factory=dict)


def _local_engine(args: argparse.Namespace) -> Callable[[bytes], bytes] | None:
    """--deidentify: the engine and key store of ``giftcloud anonymise``, on this machine."""
    if not args.deidentify:
        return None
    from giftcloud_deid import DEFAULT_PROFILE, Deidentifier, Profile, ProfileError
    from giftcloud_deid.keystore import KeyStore, KeyStoreError, site_keys

    from giftcloud.anonymise import site_namespace

    keys_folder = Path(args.keys).expanduser()
    try:
        profile = Profile.load(Path(args.profile)) if args.profile else DEFAULT_PROFILE
        keys = site_keys(args.project) or KeyStore(keys_folder).keys(args.project)
        namespace, _ = site_namespace(None, keys_folder)
    except (ProfileError, KeyStoreError, OSError, ValueError) as exc:
        raise CommandError(f"--deidentify: {exc}") from None
    engine = Deidentifier(keys, profile, namespace=namespace)
    return lambda data: engine.deidentify(data).data


def _check_project(session: Session, project: str) -> None:
    with reaching(session.url):
        response = session.http.get(f"/ingest/{quote(project)}/uploads")
    if response.status_code == 404:
        raise CommandError(
            f"no project {project!r} at {session.url} (giftcloud projects lists yours)"
        )
    session.check(response, f"sending to {project}")


def send(args: argparse.Namespace) -> int:
    items = collect(args.files)
    if not items:
        raise CommandError(f"no files in {' '.join(args.files)}")
    session = session_for(args)
    _check_project(session, args.project)
    deidentify = _local_engine(args)
    sent = Sent(session.url, args.project)
    uploads: list[Upload] = []
    progress = Progress(len(items), "sent")
    try:
        batch: list[tuple[Item, bytes]] = []
        for item in items:
            data = _prepare(item, sent, deidentify)
            if data is not None:
                batch.append((item, data))
            progress.step(len(data or b""))
            if len(batch) >= args.batch:
                uploads.append(_stow(session, args.project, batch))
                batch = []
        if batch:
            uploads.append(_stow(session, args.project, batch))
        progress.done()
        waiting = _counts(items).get("stored", 0)
        if not args.no_wait and waiting:
            print(
                f"waiting for {waiting} instance(s) to be de-identified and archived"
                " (--no-wait does not wait)",
                file=sys.stderr,
                flush=True,
            )
            _wait(session, args.project, uploads, sent, args.wait)
    except KeyboardInterrupt:
        progress.done()
        # one look at what the server has archived already: not sent again next time
        with contextlib.suppress(KeyboardInterrupt, CommandError):
            _wait(session, args.project, uploads, sent, 0)
        sent.save()
        counts = _counts(items)
        print(
            f"interrupted: {counts.get('stored', 0) + counts.get('archived', 0)} sent so far,"
            f" {counts.get('archived', 0)} known archived; run the same command again to send"
            " the rest"
        )
        return INTERRUPTED
    sent.save()
    return _report(items, args.no_wait)


def _prepare(item: Item, sent: Sent, deidentify: Callable[[bytes], bytes] | None) -> bytes | None:
    """The bytes to send, or None when the file is not sent (and why)."""
    from giftcloud_deid import Rejected
    from giftcloud_dicom.instance import InvalidInstance, inspect_instance

    try:
        data = item.read()
    except OSError as exc:
        item.outcome, item.reason = "refused", f"cannot read: {exc.strerror}"
        return None
    item.digest = hashlib.sha256(data).hexdigest()
    if item.digest in sent.archived:
        item.outcome = "skipped"
        return None
    try:
        inspect_instance(data)  # what the server would refuse, said before anything leaves
    except InvalidInstance as exc:
        item.outcome, item.reason = "refused", exc.message
        return None
    if deidentify is not None:
        try:
            data = deidentify(data)
        except Rejected as exc:
            item.outcome, item.reason = "refused", f"not de-identified here: {exc.reason}"
            return None
    return data


def _stow(session: Session, project: str, batch: list[tuple[Item, bytes]]) -> Upload:
    body, content_type = multipart_related([data for _, data in batch])
    with reaching(session.url):
        response = session.http.post(
            f"/dicomweb/{quote(project)}/studies",
            content=body,
            headers={"Content-Type": content_type, "Accept": "application/dicom+json"},
        )
    if response.status_code in (401, 403, 404, 415):
        session.check(response, f"sending to {project}")
    try:
        answer: dict[str, Any] = response.json()
    except ValueError:
        answer = {}
    upload = Upload(response.headers.get("X-Giftcloud-Upload", ""))
    for index, (item, _) in enumerate(batch):
        upload.parts[index] = item
        item.outcome, item.reason = "refused", ""  # until the answer says otherwise
    for entry in answer.get("00081199", {}).get("Value", []):
        item = upload.parts[int(entry[PART_INDEX]["Value"][0])]
        item.outcome = "stored"
    for entry in answer.get("00081198", {}).get("Value", []):
        item = upload.parts[int(entry[PART_INDEX]["Value"][0])]
        item.reason = str(entry.get(WHOLE_REASON, entry.get("00000902", {})).get("Value", [""])[0])
    request_refused = stow_reasons(answer)[len(answer.get("00081198", {}).get("Value", [])) :]
    for item, _ in batch:
        if item.outcome == "refused" and not item.reason:
            item.reason = (request_refused or [f"the server answered {response.status_code}"])[0]
    return upload


def _wait(
    session: Session, project: str, uploads: list[Upload], sent: Sent, seconds: float
) -> None:
    """Until every upload's instances are archived or rejected, or ``seconds`` pass (one
    look at least)."""
    open_uploads = [
        u for u in uploads if u.upload_id and any(i.outcome == "stored" for i in u.parts.values())
    ]
    deadline = time.monotonic() + seconds
    while open_uploads:
        still = []
        for upload in open_uploads:
            status = session.get(
                f"/ingest/{quote(project)}/uploads/{upload.upload_id}", "asking for the outcome"
            ).json()
            rejected = {int(r["object"].split(".")[0]): r["reason"] for r in status["rejected"]}
            for index, item in upload.parts.items():
                if index in rejected:
                    item.outcome, item.reason = "rejected", rejected[index]
            if status["pending"] == 0:
                for item in upload.parts.values():
                    if item.outcome == "stored":
                        item.outcome = "archived"
                        sent.archived.add(item.digest)
            else:
                still.append(upload)
        open_uploads = still
        if not open_uploads or time.monotonic() >= deadline:
            return
        time.sleep(0.5)


def _counts(items: list[Item]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item.outcome] = counts.get(item.outcome, 0) + 1
    return counts


def _report(items: list[Item], no_wait: bool) -> int:
    for item in items:
        if item.outcome == "refused":
            print(f"refused: {item.name}: {item.reason}")
        elif item.outcome == "rejected":
            print(f"rejected after de-identification: {item.name}: {item.reason}")
    counts = _counts(items)
    parts = [f"{counts.get('archived', 0)} archived"]
    if no_wait or counts.get("stored"):
        parts.append(f"{counts.get('stored', 0)} stored, not yet archived")
    parts += [
        f"{counts.get('rejected', 0)} rejected after de-identification",
        f"{counts.get('refused', 0)} refused",
    ]
    if counts.get("skipped"):
        parts.append(f"{counts['skipped']} sent before and archived: not sent again")
    print(f"{len(items)} file(s): " + ", ".join(parts))
    return REFUSED if counts.get("refused") or counts.get("rejected") else DONE


__all__ = ["collect", "send"]

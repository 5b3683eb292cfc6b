"""``giftcloud anonymise``: offline, a local key store, a report, a non-zero exit on rejections."""

import json
import os
import subprocess
import sys
from pathlib import Path

from support.dicom_files import patient_file as ct
from support.dicom_files import read, synthetic_instance

GIFTCLOUD = [sys.executable, "-m", "giftcloud.cli"]


def anonymise(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    site = ("GIFTCLOUD_ANONYMISE__SECRET", "GIFTCLOUD_ANONYMISE__NAMESPACE_FILE")
    environment = {k: v for k, v in os.environ.items() if k not in site}
    return subprocess.run(
        [*GIFTCLOUD, "anonymise", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**environment, **(env or {})},
    )


def corpus(folder: Path) -> None:
    for patient in ("A", "B"):
        study = f"1.2.826.0.1.3680043.9.7.55.{ord(patient)}"
        for n in range(3):
            path = folder / f"Patient {patient}" / f"img{n}.dcm"  # names in paths, as in life
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(
                synthetic_instance(
                    patient=f"Cli^{patient}",
                    patient_id=f"CLI-{patient}",
                    study_uid=study,
                    series_uid=f"{study}.1",
                    sop_uid=f"{study}.1.{n}",
                )
            )
    (folder / "notes.txt").write_text("not DICOM")


def test_a_folder_tree_is_deidentified_with_a_report_and_a_reused_key(tmp_path: Path) -> None:
    corpus(tmp_path / "in")
    keys = tmp_path / "keys"
    first = anonymise(
        str(tmp_path / "in"), str(tmp_path / "out"), "--keys", str(keys), "--project", "p1"
    )
    assert first.returncode == 1, first.stderr  # notes.txt was rejected
    report = json.loads((tmp_path / "out.report.json").read_text())
    assert (report["files"], report["deidentified"], report["rejected"]) == (7, 6, 1)
    assert report["subjects"] == 2
    assert report["rejections"][0]["file"].endswith("notes.txt")
    assert "not a well-formed DICOM" in report["rejections"][0]["reason"]
    assert "[" in first.stderr and "7/7" in first.stderr  # the progress bar
    assert (keys / "p1.key").stat().st_mode & 0o777 == 0o600

    outputs = sorted((tmp_path / "out").rglob("*.dcm"))
    assert len(outputs) == 6
    for path in outputs:
        subject, study, series, name = path.relative_to(tmp_path / "out").parts
        ds = read(path.read_bytes())
        assert (ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID) == (subject, study, series)
        assert name == f"{ds.SOPInstanceUID}.dcm"
        assert b"CLI-" not in path.read_bytes() and b"Cli^" not in path.read_bytes()
    subjects = {p.relative_to(tmp_path / "out").parts[0] for p in outputs}

    # a second run, in two worker processes, reuses the key: the same subjects, the same files
    second = anonymise(
        str(tmp_path / "in"),
        str(tmp_path / "again"),
        "--keys",
        str(keys),
        "--project",
        "p1",
        "--workers",
        "2",
    )
    assert second.returncode == 1
    again = sorted((tmp_path / "again").rglob("*.dcm"))
    assert {p.relative_to(tmp_path / "again").parts[0] for p in again} == subjects
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in outputs]

    # the site secret, when set, wins: the command then agrees with the anonymise service
    site = anonymise(
        str(tmp_path / "in" / "Patient A"),
        str(tmp_path / "site"),
        "--keys",
        str(keys),
        "--project",
        "p1",
        env={"GIFTCLOUD_ANONYMISE__SECRET": "c2l0ZS1zZWNyZXQtc2l0ZS1zZWNyZXQtc2l0ZS1zZWNyZXQ="},
    )
    assert site.returncode == 0, site.stderr
    assert {
        p.relative_to(tmp_path / "site").parts[0] for p in (tmp_path / "site").rglob("*.dcm")
    } - subjects


def test_an_unsafe_key_file_or_bad_profile_stops_the_command(tmp_path: Path) -> None:
    corpus(tmp_path / "in")
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "p1.key").write_text("c2VjcmV0" * 8)
    (keys / "p1.key").chmod(0o644)
    result = anonymise(
        str(tmp_path / "in"), str(tmp_path / "out"), "--keys", str(keys), "--project", "p1"
    )
    assert result.returncode == 2 and "chmod 600" in result.stderr
    (tmp_path / "bad.yaml").write_text("options: [nope]")
    result = anonymise(
        str(tmp_path / "in"),
        str(tmp_path / "out"),
        "--keys",
        str(tmp_path / "k2"),
        "--profile",
        str(tmp_path / "bad.yaml"),
    )
    assert result.returncode == 2 and "nope" in result.stderr


def test_vault_keys_are_made_once_with_a_private_key_only_the_owner_reads(tmp_path: Path) -> None:
    from giftcloud_deid.vault import VaultOpener, VaultRecord, VaultSealer

    made = subprocess.run(
        [*GIFTCLOUD, "vault-keys", str(tmp_path / "vault")], capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr
    private, public = tmp_path / "vault" / "vault.pem", tmp_path / "vault" / "vault.pub"
    assert private.stat().st_mode & 0o777 == 0o600
    record = VaultRecord("S", "P", "I", "N", "19000101", "1.2", "2.25.1")
    sealed = VaultSealer(public.read_bytes()).seal(record)
    assert VaultOpener(private.read_bytes()).open(sealed) == record
    again = subprocess.run(
        [*GIFTCLOUD, "vault-keys", str(tmp_path / "vault")], capture_output=True, text=True
    )
    assert again.returncode == 2 and "already holds" in again.stderr


def namespaced_corpus(folder: Path) -> None:
    """MRN123 written three ways by three modalities, MRN123 of another hospital, and a
    patient of a hospital the site does not know."""
    folder.mkdir(parents=True)
    for name, data in {
        "ct-a.dcm": ct(issuer="HOSP-A"),
        "ct-b.dcm": ct(issuer="HOSPA"),
        "ct-c.dcm": ct(),
        "ngh.dcm": ct(issuer="NGH"),
        "mercy.dcm": ct(patient_id="MRN555", issuer="MERCY-7"),
    }.items():
        (folder / name).write_bytes(data)


NAMESPACE_YAML = """\
patient_namespace:
  site: st-elsewhere
  issuers:
    st-elsewhere: [HOSP-A, HOSPA]
    north-general: [NGH]
  unknown_issuer: refuse
"""


def test_the_same_patient_written_three_ways_is_one_subject(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    for n, data in enumerate((ct(issuer="HOSP-A"), ct(issuer="HOSP-A"), ct())):
        (tmp_path / "in" / f"{n}.dcm").write_bytes(data)
    done = anonymise(str(tmp_path / "in"), str(tmp_path / "out"), "--keys", str(tmp_path / "k"))
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "out.report.json").read_text())
    assert report["subjects"] == 1 and len(list((tmp_path / "out").iterdir())) == 1
    assert report["patient_namespace"]["site"] == "site"


def test_a_dry_run_says_what_merges_and_splits_before_anything_is_written(
    tmp_path: Path,
) -> None:
    namespaced_corpus(tmp_path / "in")
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    (keys / "namespace.yaml").write_text(NAMESPACE_YAML)  # the key store's, found by itself
    done = anonymise(str(tmp_path / "in"), str(tmp_path / "out"), "--keys", str(keys), "--dry-run")
    assert done.returncode == 1, done.stderr  # the stranger is refused
    assert not (tmp_path / "out").exists()
    path = tmp_path / "out.report.json"
    assert path.stat().st_mode & 0o777 == 0o600  # it names patient IDs
    report = json.loads(path.read_text())
    assert (report["files"], report["subjects"]) == (5, 2)
    [merged] = report["merged"]
    assert merged["patient_id"] == "MRN123" and merged["files"] == 3
    assert merged["issuer_spellings"] == [[], ["HOSP-A"], ["HOSPA"]]
    [split] = report["split"]
    assert split["patient_id"] == "MRN123"
    assert sorted(split["namespaces"]) == ["north-general", "st-elsewhere"]
    [refused] = report["refused"]
    assert refused["file"].endswith("mercy.dcm") and "MERCY-7" in refused["reason"]
    assert "merged: patient MRN123" in done.stdout and "split: patient ID MRN123" in done.stdout
    assert str(keys / "namespace.yaml") in done.stdout

    # the real run then makes exactly those two subjects
    real = anonymise(str(tmp_path / "in"), str(tmp_path / "out"), "--keys", str(keys))
    assert real.returncode == 1
    assert len(list((tmp_path / "out").iterdir())) == 2


def test_workers_default_to_the_cpus_and_never_change_the_output(tmp_path: Path) -> None:
    corpus(tmp_path / "in")
    keys = str(tmp_path / "keys")
    trees = []
    for workers in ("1", "2", None):
        out = tmp_path / f"out-{workers}"
        args = [str(tmp_path / "in"), str(out), "--keys", keys]
        done = anonymise(*args, *(["--workers", workers] if workers else []))
        assert done.returncode == 1, done.stderr  # notes.txt
        report = json.loads(out.with_name(out.name + ".report.json").read_text())
        expected = int(workers) if workers else len(os.sched_getaffinity(0))
        assert report["workers"] == expected and f"{expected} worker(s)" in done.stdout
        trees.append({p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*.dcm"))})
    assert trees[0] == trees[1] == trees[2] and len(trees[0]) == 6

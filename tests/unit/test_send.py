"""``giftcloud send`` without a server: what it gathers, what it refuses before anything
leaves, and what ``--deidentify`` sends."""

import argparse
import io
import zipfile
from pathlib import Path

import pydicom
import pytest
from giftcloud.cli import main
from giftcloud.sending import Sent, _local_engine, _prepare, collect
from giftcloud.session import CommandError
from support.dicom_files import synthetic_instance


def test_collect_walks_folders_opens_zip_files_and_leaves_out_dicomdir(tmp_path: Path) -> None:
    (tmp_path / "media" / "A").mkdir(parents=True)
    (tmp_path / "media" / "A" / "IM1").write_bytes(b"one")
    (tmp_path / "media" / "DICOMDIR").write_bytes(b"index")
    with zipfile.ZipFile(tmp_path / "media" / "b.zip", "w") as archive:
        archive.writestr("x/IM2", b"two")
        archive.writestr("x/DICOMDIR", b"index")
    items = collect([str(tmp_path / "media")])
    assert [item.name for item in items] == [
        str(tmp_path / "media" / "A" / "IM1"),
        f"{tmp_path / 'media' / 'b.zip'}:x/IM2",
    ]
    assert [item.read() for item in items] == [b"one", b"two"]
    with pytest.raises(CommandError, match="nowhere: no such file or folder"):
        collect([str(tmp_path / "nowhere")])


def test_what_the_server_would_refuse_is_refused_here_with_the_reason(tmp_path: Path) -> None:
    sent = Sent("http://example.test", "p")
    good = synthetic_instance()
    for name, data in [("good", good), ("text", b"hello"), ("cut", good[:-40])]:
        (tmp_path / name).write_bytes(data)
    items = collect([str(tmp_path)])
    prepared = {item.name.rsplit("/", 1)[1]: _prepare(item, sent, None) for item in items}
    assert prepared["good"] == good
    reasons = {item.name.rsplit("/", 1)[1]: item.reason for item in items}
    assert prepared["text"] is None and reasons["text"].startswith("not a DICOM")
    assert prepared["cut"] is None and "truncated" in reasons["cut"]
    # a file archived before is not sent again
    sent.archived.add(next(i for i in items if i.name.endswith("good")).digest)
    again = collect([str(tmp_path / "good")])
    assert _prepare(again[0], sent, None) is None and again[0].outcome == "skipped"


def test_deidentify_sends_what_giftcloud_anonymise_makes(tmp_path: Path) -> None:
    """The same engine and key store as ``giftcloud anonymise``: the bytes that would leave
    carry none of the planted identifiers, and the same subject and UIDs as the offline
    tool's output."""
    source = tmp_path / "in"
    source.mkdir()
    original = synthetic_instance(patient="Doe^Jane", patient_id="MRN-SEND-1")
    (source / "a.dcm").write_bytes(original)
    keys = tmp_path / "keys"
    args = argparse.Namespace(deidentify=True, profile=None, keys=str(keys), project="local-site")
    engine = _local_engine(args)
    assert engine is not None
    (item,) = collect([str(source)])
    data = _prepare(item, Sent("http://example.test", "local-site"), engine)
    assert data is not None and data != original
    for planted in (b"Doe^Jane", b"MRN-SEND-1", b"Secret Lane", b"Who^Doctor", b"Leaky"):
        assert planted not in data, planted
    assert (
        main(
            [
                "anonymise",
                "--project",
                "local-site",
                "--keys",
                str(keys),
                str(source),
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    (offline,) = (tmp_path / "out").rglob("*.dcm")
    sent_ds, offline_ds = pydicom.dcmread(io.BytesIO(data)), pydicom.dcmread(offline)
    assert sent_ds.PatientID == offline_ds.PatientID
    assert sent_ds.SOPInstanceUID == offline_ds.SOPInstanceUID


def test_deidentify_with_an_unusable_key_store_is_one_line(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "p.key").write_text("not base64!\n")
    (keys / "p.key").chmod(0o600)
    args = argparse.Namespace(deidentify=True, profile=None, keys=str(keys), project="p")
    with pytest.raises(CommandError, match=r"--deidentify: .*base64"):
        _local_engine(args)

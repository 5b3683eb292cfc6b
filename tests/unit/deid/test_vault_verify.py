"""The vault's sealing and the verifier (the hub's audit: test_conformance.py)."""

import pytest
from giftcloud_deid import Deidentifier, ProjectKeys, Rejected
from giftcloud_deid.vault import VaultError, VaultOpener, VaultRecord, VaultSealer, generate_keypair
from support.dicom_files import read, synthetic_instance, to_bytes

RECORD = VaultRecord(
    subject="SUBJ-ABC",
    patient_id="MRN-1",
    issuer="HOSP",
    name="Doe^Jane",
    birth_date="19700101",
    study_uid="1.2.3",
    pseudonymised_study_uid="2.25.9",
)


def test_sealed_records_open_only_with_the_private_key() -> None:
    private, public = generate_keypair()
    sealer = VaultSealer(public)
    sealed = sealer.seal(RECORD)
    assert b"MRN-1" not in sealed and b"Doe" not in sealed
    assert sealed != sealer.seal(RECORD)  # a fresh ephemeral key each time
    assert VaultOpener(private).open(sealed) == RECORD
    other_private, _ = generate_keypair()
    with pytest.raises(VaultError, match="not sealed for this key"):
        VaultOpener(other_private).open(sealed)
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(VaultError):
        VaultOpener(private).open(tampered)
    with pytest.raises(VaultError, match="not a PEM public key"):
        VaultSealer(b"nonsense")


def test_the_verifier_rejects_an_identifier_left_where_the_table_keeps_values() -> None:
    ds = read(synthetic_instance(patient="Ozymandias^King", patient_id="OZ-4411"))
    ds.BodyPartExamined = "OZYMANDIAS"  # not an Annex E attribute: kept, yet it names the patient
    keys = ProjectKeys.derive(b"v" * 32, "verify")
    with pytest.raises(Rejected, match="PatientName"):
        Deidentifier(keys).deidentify(to_bytes(ds))
    ds.BodyPartExamined = "HEAD"
    ds.ImageComments = "OZ-4411"  # removed by the table: fine
    Deidentifier(keys).deidentify(to_bytes(ds))
    unchecked = Deidentifier(keys, verify_output=False)
    ds.ManufacturerModelName = "OZ-4411"  # kept (not in the table)
    assert b"OZ-4411" in unchecked.deidentify(to_bytes(ds)).data

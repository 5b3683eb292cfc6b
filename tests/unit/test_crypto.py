import os

import pytest
from giftcloud_core.crypto import DecryptionError, EnvelopeCipher


def test_round_trip_hides_the_plaintext() -> None:
    cipher = EnvelopeCipher(os.urandom(32))
    secret = b"DICM Doe^Jane MRN0001" * 100
    blob = cipher.encrypt(secret, b"incoming/a.dcm")
    assert b"Doe^Jane" not in blob
    assert cipher.decrypt(blob, b"incoming/a.dcm") == secret


def test_each_object_gets_its_own_data_key() -> None:
    cipher = EnvelopeCipher(os.urandom(32))
    assert cipher.encrypt(b"same") != cipher.encrypt(b"same")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda blob: blob[:-1] + bytes([blob[-1] ^ 1]),  # altered ciphertext
        lambda blob: blob[:30] + bytes([blob[30] ^ 1]) + blob[31:],  # altered wrapped key
        lambda blob: b"XXXX" + blob[4:],  # not ours
        lambda blob: blob[:50],  # truncated
    ],
)
def test_tampering_is_detected(mutate) -> None:  # type: ignore[no-untyped-def]
    cipher = EnvelopeCipher(os.urandom(32))
    with pytest.raises(DecryptionError):
        cipher.decrypt(mutate(cipher.encrypt(b"payload" * 10)))


def test_another_key_or_object_key_cannot_decrypt() -> None:
    blob = EnvelopeCipher(os.urandom(32)).encrypt(b"payload", b"a")
    with pytest.raises(DecryptionError, match="encrypted with key"):
        EnvelopeCipher(os.urandom(32)).decrypt(blob, b"a")
    cipher = EnvelopeCipher(os.urandom(32))
    with pytest.raises(DecryptionError):
        cipher.decrypt(cipher.encrypt(b"payload", b"a"), b"b")


def test_key_must_be_256_bits() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        EnvelopeCipher(b"short")

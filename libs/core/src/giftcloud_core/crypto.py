"""Envelope encryption at rest: a fresh AES-256-GCM data key per object, wrapped by a key-encryption key.

Layout of an encrypted object::

    b"GCE1" | kek_id (8 bytes) | wrap nonce (12) | wrapped data key (32 + 16 tag)
            | data nonce (12) | ciphertext + tag
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"GCE1"
_HEADER = len(MAGIC) + 8 + 12 + 48 + 12


class DecryptionError(ValueError):
    """An object that is not ours, was altered, or was wrapped by another key."""


class EnvelopeCipher:
    def __init__(self, key_encryption_key: bytes) -> None:
        if len(key_encryption_key) != 32:
            raise ValueError("the key-encryption key must be 32 bytes (base64 of 32 random bytes)")
        self._kek = AESGCM(key_encryption_key)
        self.kek_id = hashlib.sha256(key_encryption_key).digest()[:8]

    @classmethod
    def from_base64(cls, value: str) -> EnvelopeCipher:
        return cls(base64.b64decode(value))

    def encrypt(self, plaintext: bytes, associated: bytes = b"") -> bytes:
        """Encrypt ``plaintext``; ``associated`` (e.g. the object key) is authenticated too."""
        data_key = AESGCM.generate_key(bit_length=256)
        wrap_nonce, data_nonce = os.urandom(12), os.urandom(12)
        wrapped = self._kek.encrypt(wrap_nonce, data_key, self.kek_id)
        body = AESGCM(data_key).encrypt(data_nonce, plaintext, associated)
        return b"".join((MAGIC, self.kek_id, wrap_nonce, wrapped, data_nonce, body))

    def decrypt(self, blob: bytes, associated: bytes = b"") -> bytes:
        if len(blob) < _HEADER or not blob.startswith(MAGIC):
            raise DecryptionError("not an encrypted giftcloud object")
        kek_id = blob[4:12]
        if kek_id != self.kek_id:
            raise DecryptionError(
                f"object was encrypted with key {kek_id.hex()}, not {self.kek_id.hex()}"
            )
        wrap_nonce, wrapped = blob[12:24], blob[24:72]
        data_nonce, body = blob[72:84], blob[84:]
        try:
            data_key = self._kek.decrypt(wrap_nonce, wrapped, kek_id)
            return AESGCM(data_key).decrypt(data_nonce, body, associated)
        except InvalidTag as exc:
            raise DecryptionError("object failed authentication: altered or wrong key") from exc


def generate_key_b64() -> str:
    """A new random 256-bit key, base64-encoded (for settings)."""
    return base64.b64encode(os.urandom(32)).decode()

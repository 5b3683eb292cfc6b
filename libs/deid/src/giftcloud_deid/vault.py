"""The re-identification vault's sealing: writers need only a public key; reading needs the private one.

Hybrid encryption (an ECIES construction): an ephemeral X25519 key agreement with the
vault's public key, HKDF-SHA256 to a one-time AES-256-GCM key, the record sealed with
it. A sealed record is ``b"GCV1" || ephemeral public key (32) || nonce (12) ||
ciphertext``; the vault key id is bound in as associated data.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"GCV1"


class VaultError(ValueError):
    """A key or a sealed record that cannot be used; the message says why."""


@dataclass(frozen=True)
class VaultRecord:
    """Who a subject was, for one of their studies."""

    subject: str
    patient_id: str
    issuer: str
    name: str
    birth_date: str
    study_uid: str  # the original
    pseudonymised_study_uid: str
    extra: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> VaultRecord:
        return cls(**json.loads(raw))


def _raw(public: X25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public: X25519PublicKey) -> str:
    return hashlib.sha256(_raw(public)).hexdigest()[:12]


def _key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=ephemeral + recipient,
        info=b"giftcloud-vault-v1",
    ).derive(shared)


def generate_keypair() -> tuple[bytes, bytes]:
    """A new vault key pair as (private PEM, public PEM)."""
    private = X25519PrivateKey.generate()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


class VaultSealer:
    """Seals records for the holder of the vault's private key."""

    def __init__(self, public_pem: bytes) -> None:
        try:
            public = serialization.load_pem_public_key(public_pem)
        except ValueError as exc:
            raise VaultError(f"not a PEM public key: {exc}") from exc
        if not isinstance(public, X25519PublicKey):
            raise VaultError("the vault public key must be an X25519 key")
        self.public = public
        self.key_id = key_id(public)

    def seal(self, record: VaultRecord) -> bytes:
        return self.seal_bytes(record.to_json())

    def seal_bytes(self, raw: bytes) -> bytes:
        ephemeral = X25519PrivateKey.generate()
        ephemeral_raw = _raw(ephemeral.public_key())
        key = _key(ephemeral.exchange(self.public), ephemeral_raw, _raw(self.public))
        nonce = os.urandom(12)
        sealed = AESGCM(key).encrypt(nonce, raw, self.key_id.encode())
        return MAGIC + ephemeral_raw + nonce + sealed


class VaultOpener:
    """Opens sealed records: only with the vault's private key."""

    def __init__(self, private_pem: bytes) -> None:
        try:
            private = serialization.load_pem_private_key(private_pem, password=None)
        except (ValueError, TypeError) as exc:
            raise VaultError(f"not an unencrypted PEM private key: {exc}") from exc
        if not isinstance(private, X25519PrivateKey):
            raise VaultError("the vault private key must be an X25519 key")
        self.private = private
        self.key_id = key_id(private.public_key())

    def open(self, sealed: bytes) -> VaultRecord:
        return VaultRecord.from_json(self.open_bytes(sealed))

    def open_bytes(self, sealed: bytes) -> bytes:
        if len(sealed) < 4 + 32 + 12 + 16 or not sealed.startswith(MAGIC):
            raise VaultError("not a sealed vault record")
        ephemeral_raw, nonce, body = sealed[4:36], sealed[36:48], sealed[48:]
        ephemeral = X25519PublicKey.from_public_bytes(ephemeral_raw)
        key = _key(self.private.exchange(ephemeral), ephemeral_raw, _raw(self.private.public_key()))
        try:
            return AESGCM(key).decrypt(nonce, body, self.key_id.encode())
        except InvalidTag as exc:
            raise VaultError("the record was not sealed for this key, or was altered") from exc

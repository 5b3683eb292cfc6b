"""Access tokens: RS256 JWTs signed by auth, verified locally by every service from the JWKS.

This is the only module that imports python-jose.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwk, jwt
from jose.exceptions import JOSEError

from giftcloud_core.errors import Forbidden, Unauthorized

ProjectRole = Literal["owner", "member", "collaborator"]
#: admin: everything; creator: may create projects; reidentifier: may read the vault
SiteRole = Literal["admin", "creator", "reidentifier"]
READ_ROLES: frozenset[str] = frozenset({"owner", "member", "collaborator"})
WRITE_ROLES: frozenset[str] = frozenset({"owner", "member"})
ALGORITHM = "RS256"


def generate_private_key_pem() -> str:
    """A new 2048-bit RSA private key, PKCS#8 PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


class TokenSigner:
    """Signs access tokens with one RSA key; publishes its public half as a JWKS."""

    def __init__(self, private_pem: str, issuer: str, audience: str) -> None:
        private = serialization.load_pem_private_key(private_pem.encode(), password=None)
        public_pem = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.kid = hashlib.sha256(public_pem).hexdigest()[:16]
        self._private_pem = private_pem
        self._public_jwk = {
            **jwk.construct(public_pem.decode(), ALGORITHM).to_dict(),
            "kid": self.kid,
            "use": "sig",
            "alg": ALGORITHM,
        }
        self.issuer = issuer
        self.audience = audience

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self._public_jwk]}

    def sign(
        self,
        subject: str,
        *,
        site_roles: list[str],
        projects: Mapping[str, str],
        lifetime_seconds: int,
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "iat": now,
            "exp": now + lifetime_seconds,
            "roles": sorted(site_roles),
            "projects": dict(projects),
        }
        return str(
            jwt.encode(claims, self._private_pem, algorithm=ALGORITHM, headers={"kid": self.kid})
        )


@dataclass(frozen=True)
class Principal:
    """Who is calling, and with which roles."""

    subject: str
    site_roles: frozenset[str] = frozenset()
    projects: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.site_roles

    def role_on(self, project: str) -> str | None:
        if self.is_admin:
            return "owner"
        return self.projects.get(project)

    def require(self, project: str, roles: frozenset[str] = READ_ROLES) -> str:
        """The caller's role on ``project``; :class:`Forbidden` unless it is one of ``roles``."""
        role = self.role_on(project)
        if role not in roles:
            raise Forbidden(
                f"user {self.subject!r} has no role on project {project!r} that allows this"
                f" (needs one of: {', '.join(sorted(roles))})"
            )
        return role


class JwksSource(Protocol):
    """Where a verifier gets the signing keys; ``refresh`` asks for a fresh copy (an unknown key id)."""

    async def __call__(self, refresh: bool = False) -> dict[str, Any]: ...


class SignerJwks:
    """The keys of a signer in this process (auth itself, ``giftcloud up``, tests): always fresh."""

    def __init__(self, signer: Callable[[], TokenSigner]) -> None:
        self._signer = signer  # a callable: auth loads its key at start, after wiring

    async def __call__(self, refresh: bool = False) -> dict[str, Any]:
        return self._signer().jwks()


class HttpJwks:
    """Fetches the JWKS over HTTP and caches it; refetches (at most every 10 s) on an unknown key id."""

    def __init__(self, url: str, client: httpx.AsyncClient | None = None) -> None:
        self.url = url
        self._client = client
        self._cached: dict[str, Any] | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def __call__(self, refresh: bool = False) -> dict[str, Any]:
        async with self._lock:
            stale = time.monotonic() - self._fetched_at > (10 if refresh else 300)
            if self._cached is None or stale:
                client = self._client or httpx.AsyncClient(timeout=5)
                try:
                    response = await client.get(self.url)
                    response.raise_for_status()
                    self._cached = response.json()
                    self._fetched_at = time.monotonic()
                finally:
                    if self._client is None:
                        await client.aclose()
            assert self._cached is not None
            return self._cached


class TokenVerifier:
    def __init__(self, jwks: JwksSource, issuer: str, audience: str) -> None:
        self._jwks = jwks
        self.issuer = issuer
        self.audience = audience

    async def verify(self, token: str) -> Principal:
        """The principal a valid token names; :class:`Unauthorized` otherwise."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except JOSEError as exc:
            raise Unauthorized("malformed bearer token") from exc
        try:
            keys = await self._jwks()
            key = _find_key(keys, kid)
            if key is None:  # the key may have been rotated since the keys were fetched
                key = _find_key(await self._jwks(refresh=True), kid)
        except httpx.HTTPError as exc:
            raise Unauthorized("cannot fetch the token-signing keys from auth; try again") from exc
        if key is None:
            raise Unauthorized("token signed by an unknown key")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options=_REQUIRED_CLAIMS,
            )
        except JOSEError as exc:
            raise Unauthorized(f"invalid token: {exc}") from exc
        return Principal(
            subject=str(claims["sub"]),
            site_roles=frozenset(claims.get("roles", [])),
            projects=dict(claims.get("projects", {})),
        )


#: a token without an expiry (or a subject, issuer, audience, issue time) is no token
_REQUIRED_CLAIMS = {
    "require_exp": True,
    "require_iat": True,
    "require_sub": True,
    "require_iss": True,
    "require_aud": True,
}


def _find_key(jwks: dict[str, Any], kid: object) -> dict[str, Any] | None:
    for key in jwks.get("keys", []):
        if key.get("kid") == kid:
            return dict(key)
    return None

"""Access tokens: RS256 JWTs signed by auth, verified locally by every service from the JWKS.

This is the only module that imports python-jose.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwk, jwt
from jose.exceptions import JOSEError

from giftcloud_core.errors import Forbidden, Unauthorized

log = logging.getLogger(__name__)

ProjectRole = Literal["owner", "member", "collaborator"]
#: a project role and the roles it includes: a credential never holds more than its maker
ROLE_RANK = {"collaborator": 1, "member": 2, "owner": 3}
#: bearer credentials that are API keys (exchanged at auth for an access token), not tokens
API_KEY_PREFIX = "gck_"
#: admin: everything; creator: may create projects; reidentifier: may read the vault;
#: steward: releases (or withholds) what a federated job's algorithm gave at this site
SiteRole = Literal["admin", "creator", "reidentifier", "steward"]
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

    @property
    def public_jwk(self) -> dict[str, Any]:
        return dict(self._public_jwk)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self._public_jwk]}

    def sign(
        self,
        subject: str,
        *,
        site_roles: Sequence[str],
        projects: Mapping[str, str],
        lifetime_seconds: int,
        kind: Literal["user", "client"] = "user",
        networks: Sequence[str] = (),
        creator: str = "",
        sign_in: str = "",
    ) -> str:
        """A signed access token; ``sign_in`` names the sign-in (refresh family) it belongs
        to, so that ending the sign-in refuses it (:func:`sign_in_subject`)."""
        moment = time.time()
        now = int(moment)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "iat": now,
            #: the issue time to the millisecond: a revocation refuses exactly what came before
            "iat_ms": int(moment * 1000),
            "exp": now + lifetime_seconds,
            "jti": uuid.uuid4().hex,
            "roles": sorted(site_roles),
            "projects": dict(projects),
        }
        if kind != "user":
            claims["kind"] = kind
        if networks:
            claims["nets"] = list(networks)
        if creator:
            claims["creator"] = creator
        if sign_in:
            claims["sid"] = sign_in
        return str(
            jwt.encode(claims, self._private_pem, algorithm=ALGORITHM, headers={"kid": self.kid})
        )


@dataclass(frozen=True)
class Principal:
    """Who is calling, and with which roles.

    ``kind`` is ``client`` for a machine credential (an API key, a site's forwarder): then
    ``creator`` is the person who made it and ``networks`` the CIDRs it may be used from.
    """

    subject: str
    site_roles: frozenset[str] = frozenset()
    projects: Mapping[str, str] = field(default_factory=dict)
    kind: str = "user"
    networks: tuple[str, ...] = ()
    creator: str = ""
    token_id: str = ""

    @property
    def name(self) -> str:
        """How audit records and messages name the caller."""
        if self.kind == "client":
            return f"key {self.subject} of {self.creator}" if self.creator else self.subject
        return self.subject

    @property
    def is_admin(self) -> bool:
        return "admin" in self.site_roles

    def is_credential(self, client_id: str | None) -> bool:
        """This caller is the machine credential ``client_id`` (never a person of that name):
        how a registered machine (a Flower runner, a site's gate) is told from the rest."""
        return self.kind == "client" and client_id is not None and self.subject == client_id

    @property
    def may_create_projects(self) -> bool:
        """A person (not a key) with the admin or the creator site role."""
        return self.kind == "user" and (self.is_admin or "creator" in self.site_roles)

    def role_on(self, project: str) -> str | None:
        if self.is_admin:
            return "owner"
        return self.projects.get(project)

    def require(self, project: str, roles: frozenset[str] = READ_ROLES) -> str:
        """The caller's role on ``project``; :class:`Forbidden` unless it is one of ``roles``."""
        role = self.role_on(project)
        if role not in roles:
            raise Forbidden(
                f"{self.name} has no role on project {project!r} that allows this"
                f" (needs one of: {', '.join(sorted(roles))})"
            )
        return role


class JwksSource(Protocol):
    """Where a verifier gets the signing keys; ``refresh`` asks for a fresh copy (an unknown key id)."""

    async def __call__(self, refresh: bool = False) -> dict[str, Any]: ...


class HasJwks(Protocol):
    def jwks(self) -> dict[str, Any]: ...


class SignerJwks:
    """The keys of a signer in this process (auth itself, ``giftcloud up``, tests): always fresh."""

    def __init__(self, signer: Callable[[], HasJwks]) -> None:
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


class RevocationSource(Protocol):
    """Which subjects' tokens were revoked: SHA-256 of the subject -> tokens issued before
    this time (milliseconds since the epoch) are refused."""

    async def __call__(self) -> Mapping[str, int]: ...


def subject_digest(subject: str) -> str:
    """How revocation lists name a subject (not in the clear)."""
    return hashlib.sha256(subject.encode()).hexdigest()


def sign_in_subject(sign_in: str) -> str:
    """How the revocation list names every token of one sign-in (a refresh family)."""
    return f"sign-in:{sign_in}"


class HttpRevocations:
    """Auth's revocation list over HTTP, fetched again every ``interval`` seconds; when auth
    cannot be reached the last list stands (and the failure is logged)."""

    def __init__(
        self, url: str, interval: float = 10.0, client: httpx.AsyncClient | None = None
    ) -> None:
        self.url = url
        self.interval = interval
        self._client = client
        self._revoked: dict[str, int] = {}
        self._fetched_at = -1e9
        self._lock = asyncio.Lock()

    async def __call__(self) -> Mapping[str, int]:
        async with self._lock:
            if time.monotonic() - self._fetched_at >= self.interval:
                client = self._client or httpx.AsyncClient(timeout=5)
                try:
                    response = await client.get(self.url)
                    response.raise_for_status()
                    self._revoked = {str(k): int(v) for k, v in response.json()["revoked"].items()}
                except (httpx.HTTPError, KeyError, ValueError) as exc:
                    log.warning("cannot fetch revoked tokens from %s: %s", self.url, exc)
                finally:
                    self._fetched_at = time.monotonic()
                    if self._client is None:
                        await client.aclose()
            return self._revoked


class TokenVerifier:
    def __init__(
        self,
        jwks: JwksSource,
        issuer: str,
        audience: str,
        revocations: RevocationSource | None = None,
    ) -> None:
        self._jwks = jwks
        self.issuer = issuer
        self.audience = audience
        self._revocations = revocations

    async def verify(self, token: str) -> Principal:
        """The principal a valid token names; :class:`Unauthorized` otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except JOSEError as exc:
            raise Unauthorized("malformed bearer token") from exc
        if header.get("alg") != ALGORITHM:  # pinned: never none, never HMAC with a public key
            raise Unauthorized(f"tokens are signed with {ALGORITHM}, not {header.get('alg')!r}")
        kid = header.get("kid")
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
        if self._revocations is not None:
            revoked = await self._revocations()
            issued = int(claims.get("iat_ms", int(claims["iat"]) * 1000))
            sign_in = claims.get("sid")
            for whose in (
                claims["sub"],
                claims.get("creator"),
                sign_in_subject(str(sign_in)) if sign_in else None,
            ):
                before = revoked.get(subject_digest(str(whose))) if whose else None
                if before is not None and issued < before:
                    raise Unauthorized("this token was revoked: sign in again")
        return Principal(
            subject=str(claims["sub"]),
            site_roles=frozenset(claims.get("roles", [])),
            projects=dict(claims.get("projects", {})),
            kind=str(claims.get("kind", "user")),
            networks=tuple(claims.get("nets", ())),
            creator=str(claims.get("creator", "")),
            token_id=str(claims.get("jti", "")),
        )


#: a token without an expiry (or a subject, issuer, audience, issue time) is no token
_REQUIRED_CLAIMS = {
    "require_exp": True,
    "require_iat": True,
    "require_sub": True,
    "require_iss": True,
    "require_aud": True,
}


#: what an identity provider may sign ID tokens with (never none, never HMAC)
ID_TOKEN_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384")


def verify_id_token(
    token: str,
    jwks: dict[str, Any],
    *,
    issuer: str,
    client_id: str,
    nonce: str,
    access_token: str | None = None,
) -> dict[str, Any]:
    """The claims of an OpenID Connect ID token that the provider's keys sign, issued by
    ``issuer`` to ``client_id`` for this sign-in (``nonce``); :class:`Unauthorized` otherwise."""
    try:
        header = jwt.get_unverified_header(token)
    except JOSEError as exc:
        raise Unauthorized("the identity provider sent a malformed ID token") from exc
    algorithm = header.get("alg")
    if algorithm not in ID_TOKEN_ALGORITHMS:
        raise Unauthorized(f"ID tokens signed with {algorithm!r} are not accepted")
    key = _find_key(jwks, header.get("kid"))
    if key is None and len(jwks.get("keys", [])) == 1 and "kid" not in header:
        key = dict(jwks["keys"][0])
    if key is None:
        raise Unauthorized("the ID token is signed by a key the identity provider does not publish")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=client_id,
            issuer=issuer,
            access_token=access_token,
            options={"require_exp": True, "require_iat": True, "require_sub": True},
        )
    except JOSEError as exc:
        raise Unauthorized(f"the identity provider's ID token is not valid: {exc}") from exc
    if not nonce or claims.get("nonce") != nonce:
        raise Unauthorized("the ID token is not of this sign-in (nonce)")
    return claims


def _find_key(jwks: dict[str, Any], kid: object) -> dict[str, Any] | None:
    for key in jwks.get("keys", []):
        if key.get("kid") == kid:
            return dict(key)
    return None

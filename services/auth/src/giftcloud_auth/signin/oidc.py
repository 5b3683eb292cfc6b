"""Single sign-on with an institution's OpenID Connect provider: authorization code with
PKCE (S256), state bound to the browser by a cookie, nonce checked in the ID token. The
provider says who the person is; the roles stay in giftcloud."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from giftcloud_core.errors import NotFound, Unauthorized
from giftcloud_core.settings import AuthSettings
from giftcloud_core.tokens import verify_id_token


def pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def username_from(claims: dict[str, Any], claim: str) -> str:
    """A giftcloud username from the provider's claims (lower-case, the allowed characters)."""
    email = str(claims.get("email") or "")
    raw = str(claims.get(claim) or email.split("@")[0] or claims["sub"])
    name = re.sub(r"[^a-z0-9_.@-]+", "-", raw.lower()).strip("-.")[:100]
    return name if len(name) >= 2 else f"user-{name}"


@dataclass(frozen=True)
class Identity:
    issuer: str
    subject: str
    email: str
    email_verified: bool
    claims: dict[str, Any]


class OidcClient:
    """The provider's endpoints (from its discovery document, cached for an hour) and the
    two calls a sign-in makes: the redirect to it, and the code exchange."""

    def __init__(self, settings: AuthSettings) -> None:
        if not settings.oidc_issuer:
            raise NotFound("single sign-on is not configured here (GIFTCLOUD_AUTH__OIDC_ISSUER)")
        self.settings = settings
        self.issuer = settings.oidc_issuer.rstrip("/")
        self._discovery: tuple[float, dict[str, Any]] | None = None
        self._jwks: tuple[float, dict[str, Any]] | None = None

    async def _get(self, url: str) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=10) as client:
            try:
                response = await client.get(url)
                response.raise_for_status()
            except httpx.HTTPError as exc:
                raise Unauthorized(f"the identity provider cannot be reached: {exc}") from exc
            body: dict[str, Any] = response.json()
            return body

    async def discovery(self) -> dict[str, Any]:
        if self._discovery is None or time.monotonic() - self._discovery[0] > 3600:
            document = await self._get(f"{self.issuer}/.well-known/openid-configuration")
            if document.get("issuer", "").rstrip("/") != self.issuer:
                raise Unauthorized("the identity provider's discovery names another issuer")
            self._discovery = (time.monotonic(), document)
        return self._discovery[1]

    async def _keys(self, refresh: bool = False) -> dict[str, Any]:
        if refresh or self._jwks is None or time.monotonic() - self._jwks[0] > 3600:
            self._jwks = (time.monotonic(), await self._get((await self.discovery())["jwks_uri"]))
        return self._jwks[1]

    async def authorization_url(
        self, *, state: str, nonce: str, challenge: str, redirect_uri: str
    ) -> str:
        endpoint = (await self.discovery())["authorization_endpoint"]
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.settings.oidc_client_id,
                "redirect_uri": redirect_uri,
                "scope": self.settings.oidc_scopes,
                "state": state,
                "nonce": nonce,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        return f"{endpoint}?{query}"

    async def identify(
        self, *, code: str, verifier: str, nonce: str, redirect_uri: str
    ) -> Identity:
        """Exchange the code (with the PKCE verifier) and check the ID token it brings."""
        document = await self.discovery()
        secret = self.settings.oidc_client_secret
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": self.settings.oidc_client_id,
            "code_verifier": verifier,
        }
        if secret is not None:
            form["client_secret"] = secret.get_secret_value()
        async with httpx.AsyncClient(timeout=10) as client:
            try:
                response = await client.post(document["token_endpoint"], data=form)
            except httpx.HTTPError as exc:
                raise Unauthorized(f"the identity provider cannot be reached: {exc}") from exc
        if response.status_code != 200:
            raise Unauthorized(f"the identity provider refused the sign-in: {response.text[:200]}")
        tokens = response.json()
        id_token = str(tokens.get("id_token", ""))
        keys = await self._keys()
        try:
            claims = self._verify(id_token, keys, nonce, tokens.get("access_token"))
        except Unauthorized:  # the provider may have rotated its keys
            claims = self._verify(
                id_token, await self._keys(refresh=True), nonce, tokens.get("access_token")
            )
        access_token = tokens.get("access_token")
        if access_token and document.get("userinfo_endpoint"):
            # providers keep profile claims out of the ID token when they issue an access
            # token (OIDC Core 5.4): ask for them, for the same subject only
            async with httpx.AsyncClient(timeout=10) as client:
                info = await client.get(
                    document["userinfo_endpoint"],
                    headers={"Authorization": f"Bearer {access_token}"},
                )
            if info.status_code == 200 and info.json().get("sub") == claims["sub"]:
                claims = {**info.json(), **claims}
        return Identity(
            issuer=self.issuer,
            subject=str(claims["sub"]),
            email=str(claims.get("email") or ""),
            email_verified=claims.get("email_verified") is True,
            claims=claims,
        )

    def _verify(
        self, token: str, keys: dict[str, Any], nonce: str, access_token: object
    ) -> dict[str, Any]:
        return verify_id_token(
            token,
            keys,
            issuer=self.issuer,
            client_id=self.settings.oidc_client_id,
            nonce=nonce,
            access_token=str(access_token) if access_token else None,
        )

"""The OAuth2 token endpoint (password, refresh_token, client_credentials) and sign-out."""

import base64
import binascii
from typing import Annotated

from fastapi import APIRouter, Form, Request, status
from giftcloud_core.access import request_address
from giftcloud_core.errors import BadRequest

from giftcloud_auth.keys.service import Keys
from giftcloud_auth.schemas import RefreshTokenBody, TokenResponse
from giftcloud_auth.signin.service import PasswordSignIn
from giftcloud_auth.signin.tokens import Tokens


def _no_nul(**fields: str | None) -> None:
    for name, value in fields.items():
        if value is not None and "\x00" in value:
            raise BadRequest(f"the {name} holds a NUL byte")


def _client_from_basic(header: str) -> tuple[str, str] | None:
    """client_id and secret from ``Authorization: Basic`` (RFC 6749 §2.3.1)."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise BadRequest("malformed Basic credentials") from None
    return client_id, secret


def build_router(sign_in: PasswordSignIn, tokens: Tokens, keys: Keys) -> APIRouter:
    router = APIRouter(prefix="/auth", tags=["sign-in"])

    @router.post("/token", response_model=TokenResponse, response_model_exclude_none=True)
    async def token(
        request: Request,
        grant_type: Annotated[str, Form(max_length=64)] = "password",
        username: Annotated[str | None, Form(max_length=256)] = None,
        password: Annotated[str | None, Form(max_length=1024)] = None,
        refresh_token: Annotated[str | None, Form(max_length=200)] = None,
        client_id: Annotated[str | None, Form(max_length=64)] = None,
        client_secret: Annotated[str | None, Form(max_length=200)] = None,
    ) -> TokenResponse:
        """OAuth2 token endpoint: grant types ``password`` (with a refresh token),
        ``refresh_token`` (rotating: each is used once) and ``client_credentials`` (API keys
        and site clients; the secret in the form or as HTTP Basic)."""
        _no_nul(
            username=username,
            password=password,
            refresh_token=refresh_token,
            client_id=client_id,
            client_secret=client_secret,
        )
        address = request_address(request)
        if grant_type == "password":
            if username is None or password is None:
                raise BadRequest("the password grant needs a username and a password")
            return await sign_in.grant(username, password, address)
        if grant_type == "refresh_token":
            if refresh_token is None:
                raise BadRequest("the refresh_token grant needs a refresh_token")
            return await tokens.refresh(refresh_token, address)
        if grant_type == "client_credentials":
            basic = _client_from_basic(request.headers.get("authorization", ""))
            if basic is not None:
                client_id, client_secret = basic
            if not client_id or not client_secret:
                raise BadRequest("the client_credentials grant needs a client_id and client_secret")
            return await keys.exchange(client_id, client_secret, address)
        raise BadRequest(
            f"unsupported grant_type {grant_type[:40]!r}: use password, refresh_token or"
            " client_credentials"
        )

    @router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
    async def logout(data: RefreshTokenBody, request: Request) -> None:
        """Sign out: the refresh token and every token of its sign-in stop working."""
        await tokens.sign_out(data.refresh_token, request_address(request))

    return router

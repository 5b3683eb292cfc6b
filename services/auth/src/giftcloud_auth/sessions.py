"""Browser sign-in: single sign-on with the institution's identity provider, and the
session that follows it (the web pages' refresh token in an HttpOnly, SameSite=Strict
cookie; every unsafe request also carries ``X-Requested-With``, which no other site can
send without our CORS consent)."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from giftcloud_core.access import over_tls, request_address
from giftcloud_core.errors import Forbidden, GiftcloudError, Unauthorized

from giftcloud_auth.schemas import TokenResponse
from giftcloud_auth.service import AuthService

STATE_COOKIE = "giftcloud_oidc"
SESSION_COOKIE = "giftcloud_session"
CSRF_HEADER = "x-requested-with"


def _refusal(message: str, status_code: int) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Sign-in failed"
        "</title></head><body><h1>Sign-in failed</h1>"
        f"<p role='alert'>{escape(message)}</p><p><a href='/auth/oidc/login'>Try again</a></p>"
        "</body></html>",
        status_code=status_code,
    )


def build_router(service: AuthService) -> APIRouter:
    router = APIRouter(prefix="/auth", include_in_schema=False)

    def set_session(response: Response, request: Request, tokens: TokenResponse) -> None:
        if tokens.refresh_token is None or tokens.refresh_expires_in is None:
            raise RuntimeError("a browser session needs a refresh token")
        response.set_cookie(
            SESSION_COOKIE,
            tokens.refresh_token,
            max_age=tokens.refresh_expires_in,
            path="/auth/session",
            httponly=True,
            samesite="strict",
            secure=over_tls(request),
        )

    def same_site_request(request: Request) -> None:
        if request.headers.get(CSRF_HEADER, "").lower() != "giftcloud":
            raise Forbidden("this request needs the header X-Requested-With: giftcloud")

    @router.get("/oidc/login")
    async def sso_login(request: Request, next: str = "/") -> Response:
        """Off to the identity provider; back at /auth/oidc/callback."""
        try:
            url, state = await service.sso_begin(next)
        except GiftcloudError as exc:
            return _refusal(exc.message, exc.status)
        response = RedirectResponse(url, status_code=status.HTTP_302_FOUND)
        response.set_cookie(  # Lax: it must come back with the provider's redirect
            STATE_COOKIE,
            state,
            max_age=600,
            path="/auth/oidc",
            httponly=True,
            samesite="lax",
            secure=over_tls(request),
        )
        return response

    @router.get("/oidc/callback")
    async def sso_callback(
        request: Request,
        code: str = "",
        state: str = "",
        error: str = "",
        error_description: str = "",
        iss: str = "",
    ) -> Response:
        if error:
            return _refusal(f"the identity provider said: {error_description or error}", 400)
        if iss and iss.rstrip("/") != (service.config.oidc_issuer or "").rstrip("/"):
            return _refusal("the answer comes from another identity provider (RFC 9207)", 400)
        try:
            tokens, next_path = await service.sso_finish(
                bound_state=request.cookies.get(STATE_COOKIE, ""),
                state=state[:200],
                code=code[:2000],
                address=request_address(request),
            )
        except GiftcloudError as exc:
            return _refusal(exc.message, exc.status)
        response = RedirectResponse(next_path, status_code=status.HTTP_303_SEE_OTHER)
        response.delete_cookie(STATE_COOKIE, path="/auth/oidc")
        set_session(response, request, tokens)
        return response

    @router.get("/session")
    async def who(request: Request) -> JSONResponse:
        """Who this browser is signed in as (401 if no one)."""
        user = await service.session_user(request.cookies.get(SESSION_COOKIE, ""))
        if user is None:
            raise Unauthorized("not signed in")
        return JSONResponse({"username": user.username, "site_roles": user.roles()})

    @router.post("/session/token")
    async def session_token(request: Request) -> JSONResponse:
        """A fresh access token for the page's scripts; the session cookie rotates."""
        same_site_request(request)
        current = request.cookies.get(SESSION_COOKIE, "")
        if not current:
            raise Unauthorized("not signed in")
        tokens = await service.refresh_grant(current, request_address(request))
        response = JSONResponse(
            {"access_token": tokens.access_token, "expires_in": tokens.expires_in},
            headers={"Cache-Control": "no-store"},
        )
        set_session(response, request, tokens)
        return response

    @router.post("/session/logout", status_code=status.HTTP_204_NO_CONTENT)
    async def session_logout(request: Request) -> Response:
        """Sign this browser out: its session and every token of it end."""
        same_site_request(request)
        current = request.cookies.get(SESSION_COOKIE, "")
        if current:
            await service.sign_out(current, request_address(request))
        response = Response(status_code=status.HTTP_204_NO_CONTENT)
        response.delete_cookie(SESSION_COOKIE, path="/auth/session")
        return response

    return router

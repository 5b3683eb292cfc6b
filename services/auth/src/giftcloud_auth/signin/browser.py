"""Browser sign-in: with a password (the web interface's sign-in form) or single sign-on
with the institution's identity provider, and the session that follows it.

A session is two HttpOnly, SameSite=Strict cookies (Secure over TLS): the refresh token,
sent only to ``/auth/session``, and the access token, sent everywhere but accepted by the
services for GET and HEAD only (the pages, their images and downloads). Every unsafe
request of a page carries a CSRF proof: ``X-Requested-With: giftcloud`` (which no other
site can send without our CORS consent) from scripts, or, from a plain form, a ``csrf``
field equal to the ``giftcloud_csrf`` cookie (double submit; the web pages set both)."""

from __future__ import annotations

import hmac
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from giftcloud_core.access import over_tls, request_address, safe_next
from giftcloud_core.app import ACCESS_COOKIE, csrf_cookie
from giftcloud_core.errors import Forbidden, GiftcloudError, Unauthorized

from giftcloud_auth.errors import failure_code
from giftcloud_auth.html import page
from giftcloud_auth.schemas import TokenResponse
from giftcloud_auth.signin.service import PasswordSignIn
from giftcloud_auth.signin.sso import SingleSignOn
from giftcloud_auth.signin.tokens import Tokens

STATE_COOKIE = "giftcloud_oidc"
SESSION_COOKIE = "giftcloud_session"
CSRF_HEADER = "x-requested-with"
#: where a failed form sign-in sends the browser back to, with why (a code, not text: a
#: link cannot make the page say what it likes)
SIGN_IN_PAGE = "/signin"


def _refusal(message: str, status_code: int) -> HTMLResponse:
    return page("refused.html", status_code, message=message)


def _cookie(response: Response, name: str, value: str, age: int, path: str, secure: bool) -> None:
    response.set_cookie(
        name, value, max_age=age, path=path, httponly=True, samesite="strict", secure=secure
    )


def build_router(sign_in: PasswordSignIn, tokens: Tokens, sso: SingleSignOn) -> APIRouter:
    router = APIRouter(prefix="/auth", include_in_schema=False)

    def set_session(response: Response, request: Request, pair: TokenResponse) -> None:
        """The session cookie (when ``pair`` starts one) and the access cookie."""
        secure = over_tls(request)
        if pair.refresh_token is not None and pair.refresh_expires_in is not None:
            _cookie(response, SESSION_COOKIE, pair.refresh_token, pair.refresh_expires_in,
                    "/auth/session", secure)  # fmt: skip
        _cookie(response, ACCESS_COOKIE, pair.access_token, pair.expires_in, "/", secure)

    def end_session(response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, path="/auth/session")
        response.delete_cookie(ACCESS_COOKIE, path="/")

    async def form_field(request: Request, name: str) -> str:
        if not request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            return ""
        value = (await request.form()).get(name, "")
        return value[:4000] if isinstance(value, str) else ""

    async def same_site_request(request: Request) -> None:
        if request.headers.get(CSRF_HEADER, "").lower() == "giftcloud":
            return
        cookie = request.cookies.get(csrf_cookie(request), "")
        field = await form_field(request, "csrf")
        if len(cookie) >= 16 and hmac.compare_digest(cookie.encode(), field.encode()):
            return
        raise Forbidden(
            "this request needs the header X-Requested-With: giftcloud, or the page's form"
            " (its csrf field): reload the page and try again"
        )

    @router.post("/session/login")
    async def session_login(request: Request) -> Response:
        """The web interface's sign-in form: username, password, csrf, next."""
        next_path = safe_next(await form_field(request, "next") or "/")
        back = f"{SIGN_IN_PAGE}?{urlencode({'next': next_path})}"
        try:
            await same_site_request(request)
        except Forbidden:
            return RedirectResponse(f"{back}&failed=expired", status.HTTP_303_SEE_OTHER)
        username = (await form_field(request, "username"))[:256]
        password = (await form_field(request, "password"))[:1024]
        try:
            pair = await sign_in.grant(username, password, request_address(request))
        except GiftcloudError as exc:
            failed = failure_code(exc)
            return RedirectResponse(f"{back}&failed={failed}", status.HTTP_303_SEE_OTHER)
        response = RedirectResponse(next_path, status_code=status.HTTP_303_SEE_OTHER)
        set_session(response, request, pair)
        return response

    @router.get("/session/renew")
    async def session_renew(request: Request, next: str = "/") -> Response:
        """A fresh access cookie from the session (the pages come here when theirs has
        expired), then on to ``next``; to the sign-in page when there is no live session."""
        next_path = safe_next(next)
        current = request.cookies.get(SESSION_COOKIE, "")
        if current:
            try:
                fresh = await tokens.session_access(current)
            except GiftcloudError:
                pass
            else:
                response = RedirectResponse(next_path, status_code=status.HTTP_303_SEE_OTHER)
                set_session(response, request, fresh)
                response.headers["Cache-Control"] = "no-store"
                return response
        response = RedirectResponse(
            f"{SIGN_IN_PAGE}?{urlencode({'next': next_path})}", status.HTTP_303_SEE_OTHER
        )
        end_session(response)
        return response

    @router.get("/oidc/login")
    async def sso_login(request: Request, next: str = "/") -> Response:
        """Off to the identity provider; back at /auth/oidc/callback."""
        try:
            url, state = await sso.begin(next)
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
        if iss and iss.rstrip("/") != (sso.config.oidc_issuer or "").rstrip("/"):
            return _refusal("the answer comes from another identity provider (RFC 9207)", 400)
        try:
            pair, next_path = await sso.finish(
                bound_state=request.cookies.get(STATE_COOKIE, ""),
                state=state[:200],
                code=code[:2000],
                address=request_address(request),
            )
        except GiftcloudError as exc:
            return _refusal(exc.message, exc.status)
        response = RedirectResponse(next_path, status_code=status.HTTP_303_SEE_OTHER)
        response.delete_cookie(STATE_COOKIE, path="/auth/oidc")
        set_session(response, request, pair)
        return response

    @router.get("/session")
    async def who(request: Request) -> JSONResponse:
        """Who this browser is signed in as (401 if no one)."""
        user = await tokens.session_user(request.cookies.get(SESSION_COOKIE, ""))
        if user is None:
            raise Unauthorized("not signed in")
        return JSONResponse({"username": user.username, "site_roles": user.roles()})

    @router.post("/session/token")
    async def session_token(request: Request) -> JSONResponse:
        """A fresh access token for the page's scripts (and the access cookie with it)."""
        await same_site_request(request)
        current = request.cookies.get(SESSION_COOKIE, "")
        if not current:
            raise Unauthorized("not signed in")
        fresh = await tokens.session_access(current)
        response = JSONResponse(
            {"access_token": fresh.access_token, "expires_in": fresh.expires_in},
            headers={"Cache-Control": "no-store"},
        )
        set_session(response, request, fresh)
        return response

    @router.post("/session/logout", status_code=status.HTTP_204_NO_CONTENT)
    async def session_logout(request: Request) -> Response:
        """Sign this browser out: its session and every token of it end. From a script:
        204; from the pages' sign-out form: on to the sign-in page."""
        await same_site_request(request)
        current = request.cookies.get(SESSION_COOKIE, "")
        if current:
            await tokens.sign_out(current, request_address(request))
        response: Response = Response(status_code=status.HTTP_204_NO_CONTENT)
        if await form_field(request, "csrf"):
            response = RedirectResponse(
                f"{SIGN_IN_PAGE}?signed_out=1", status_code=status.HTTP_303_SEE_OTHER
            )
        end_session(response)
        return response

    return router

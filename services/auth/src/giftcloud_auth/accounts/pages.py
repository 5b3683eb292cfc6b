"""The two pages a person reaches from a link: accept an invitation, set a new password.
Plain forms (no script); the token travels in the link and the form, never in a cookie."""

from __future__ import annotations

from html import escape
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from giftcloud_core.access import request_address
from giftcloud_core.errors import GiftcloudError
from pydantic import ValidationError

from giftcloud_auth.accounts.links import Links
from giftcloud_auth.schemas import InviteAccept

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;line-height:1.5}"
    "label{display:block;margin-top:1rem}input{width:100%;padding:.4rem;font-size:1rem}"
    "button{margin-top:1.2rem;padding:.5rem 1.2rem;font-size:1rem}.error{color:#a00}"
)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{escape(title)} · giftcloud</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>",
        status_code=status,
    )


def _form(action: str, token: str, fields: str, button: str, error: str = "") -> str:
    problem = f"<p class='error' role='alert'>{escape(error)}</p>" if error else ""
    return (
        f"{problem}<form method='post' action='{action}'>"
        f"<input type='hidden' name='token' value='{escape(token, quote=True)}'>"
        f"{fields}<button type='submit'>{escape(button)}</button></form>"
        "<p>At least 12 characters; not a commonly used password.</p>"
    )


_SET_FIELDS = (
    "<label for='password'>New password</label>"
    "<input id='password' name='password' type='password' autocomplete='new-password'"
    " minlength='12' maxlength='1024' required>"
)
_ACCOUNT = (
    "<label for='username'>Username</label>"
    "<input id='username' name='username' autocomplete='username' pattern='[A-Za-z0-9_.@\\-]+'"
    " minlength='2' maxlength='128' required>"
    "<label for='password'>Password</label>"
    "<input id='password' name='password' type='password' autocomplete='new-password'"
    " minlength='12' maxlength='1024' required>"
)


def build_router(links: Links) -> APIRouter:
    router = APIRouter(prefix="/auth", include_in_schema=False)

    @router.get("/invite")
    async def invite_page(token: str = "") -> HTMLResponse:
        return _page(
            "Join giftcloud", _form("/auth/invite", token[:200], _ACCOUNT, "Make my account")
        )

    @router.post("/invite")
    async def accept_invite(
        request: Request,
        token: Annotated[str, Form(max_length=200)],
        username: Annotated[str, Form(max_length=128)],
        password: Annotated[str, Form(max_length=1024)],
    ) -> HTMLResponse:
        try:
            data = InviteAccept(token=token, username=username, password=password)
            user = await links.accept_invite(data, request_address(request))
        except (GiftcloudError, ValidationError) as exc:
            message = exc.message if isinstance(exc, GiftcloudError) else _first(exc)
            return _page(
                "Join giftcloud",
                _form("/auth/invite", token, _ACCOUNT, "Make my account", message),
                400,
            )
        return _page(
            "Welcome",
            f"<p>Your account <strong>{escape(user.username)}</strong> is ready: sign in.</p>",
        )

    @router.get("/reset")
    async def reset_page(token: str = "") -> HTMLResponse:
        return _page(
            "Set a new password",
            _form("/auth/reset", token[:200], _SET_FIELDS, "Set my password"),
        )

    @router.post("/reset")
    async def reset(
        request: Request,
        token: Annotated[str, Form(max_length=200)],
        password: Annotated[str, Form(max_length=1024)],
    ) -> HTMLResponse:
        try:
            await links.reset_password(token, password, request_address(request))
        except GiftcloudError as exc:
            return _page(
                "Set a new password",
                _form("/auth/reset", token, _SET_FIELDS, "Set my password", exc.message),
                400,
            )
        return _page("Password set", "<p>Your new password is set: sign in with it.</p>")

    return router


def _first(exc: ValidationError) -> str:
    error = exc.errors()[0]
    field = ".".join(str(p) for p in error.get("loc", ()))
    return f"{field}: {error.get('msg', 'not valid')}"

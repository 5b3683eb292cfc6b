"""The two pages a person reaches from a link: accept an invitation, set a new password.
Plain forms (no script); the token travels in the link and the form, never in a cookie."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from giftcloud_core.access import request_address
from giftcloud_core.errors import GiftcloudError
from pydantic import ValidationError

from giftcloud_auth.accounts.links import Links
from giftcloud_auth.html import page
from giftcloud_auth.schemas import InviteAccept

JOIN: dict[str, Any] = {
    "title": "Join giftcloud",
    "intro": "Choose your username and password: you are invited to giftcloud.",
    "action": "/auth/invite",
    "button": "Make my account",
    "with_username": True,
}
RESET: dict[str, Any] = {
    "title": "Set a new password",
    "action": "/auth/reset",
    "button": "Set my password",
    "with_username": False,
}


def build_router(links: Links) -> APIRouter:
    router = APIRouter(prefix="/auth", include_in_schema=False)

    @router.get("/invite")
    async def invite_page(token: str = "") -> HTMLResponse:
        return page("link_form.html", token=token[:200], **JOIN)

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
            return page("link_form.html", 400, token=token, error=message, **JOIN)
        return page(
            "done.html",
            title="Welcome",
            message=f"Your account {user.username} is ready: sign in with it.",
            username=user.username,
        )

    @router.get("/reset")
    async def reset_page(token: str = "") -> HTMLResponse:
        return page("link_form.html", token=token[:200], **RESET)

    @router.post("/reset")
    async def reset(
        request: Request,
        token: Annotated[str, Form(max_length=200)],
        password: Annotated[str, Form(max_length=1024)],
    ) -> HTMLResponse:
        try:
            await links.reset_password(token, password, request_address(request))
        except GiftcloudError as exc:
            return page("link_form.html", 400, token=token, error=exc.message, **RESET)
        return page(
            "done.html", title="Password set", message="Your new password is set: sign in with it."
        )

    return router


def _first(exc: ValidationError) -> str:
    error = exc.errors()[0]
    field = ".".join(str(p) for p in error.get("loc", ()))
    return f"{field}: {error.get('msg', 'not valid')}"

"""What every page of the web interface does the same way: who looks (the access cookie,
renewed when it has expired), the page rendered with its CSRF cookie and Content Security
Policy, a refusal as a readable page (audited as the API's are), the project gate."""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from giftcloud_core.access import over_tls, request_address
from giftcloud_core.app import ACCESS_COOKIE, Runtime, audit_refusal, csrf_cookie
from giftcloud_core.errors import GiftcloudError, NotFound, Unauthorized
from giftcloud_core.tokens import READ_ROLES, TokenVerifier

from giftcloud_api.catalogue.service import CatalogueService
from giftcloud_api.web.views import PAGE_POLICY, GoTo, Viewer, render


def here(request: Request) -> str:
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{request.url.path}{query}"


class Pages:
    def __init__(self, service: CatalogueService, runtime: Runtime) -> None:
        self.service = service
        self.runtime = runtime
        self.audit = runtime.audit

    def verifier(self) -> TokenVerifier:  # looked up at call time: `giftcloud up` rewires it
        return self.runtime.verifier

    async def signed_in(self, request: Request) -> Viewer:
        """The page's viewer, or off to renew the cookie (or to sign in)."""
        token = request.cookies.get(ACCESS_COOKIE, "")
        renew = f"/auth/session/renew?{urlencode({'next': here(request)})}"
        if not token:
            raise GoTo(renew)
        try:
            principal = await self.verifier().verify(token)
        except Unauthorized:
            raise GoTo(renew) from None
        request.state.principal = principal
        return Viewer(principal)

    @staticmethod
    def csrf_of(request: Request) -> str:
        token = request.cookies.get(csrf_cookie(request), "")
        if len(token) < 16:
            token = getattr(request.state, "csrf", "") or secrets.token_urlsafe(24)
            request.state.csrf = token
        return token

    def page(
        self,
        request: Request,
        template: str,
        viewer: Viewer | None,
        status: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        csrf = self.csrf_of(request)
        html = render(template, viewer=viewer, csrf=csrf, here=here(request), **context)
        response = HTMLResponse(html, status_code=status)
        response.headers["Cache-Control"] = "no-store"
        response.headers["Content-Security-Policy"] = PAGE_POLICY
        name = csrf_cookie(request)
        if request.cookies.get(name, "") != csrf:
            response.set_cookie(
                name, csrf, path="/", httponly=True, samesite="strict", secure=over_tls(request),
            )  # fmt: skip
        return response

    def refused(
        self, request: Request, viewer: Viewer | None, status: int, message: str
    ) -> Response:
        titles = {400: "Not a valid request", 403: "Not allowed", 404: "Not found"}
        return self.page(
            request,
            "error.html",
            viewer,
            status=status,
            title=titles.get(status, "Something went wrong"),
            message=message,
        )

    async def shown(
        self, request: Request, build: Callable[[Viewer], Awaitable[Response]]
    ) -> Response:
        """A page for a signed-in viewer; a refusal as a readable page."""
        viewer: Viewer | None = None
        try:
            viewer = await self.signed_in(request)
            return await build(viewer)
        except GoTo as go:
            return RedirectResponse(go.url, status_code=303)
        except GiftcloudError as exc:
            await audit_refusal(self.audit, request, exc)  # as the API's refusals are
            return self.refused(request, viewer, exc.status, exc.message)

    async def project_for(
        self, request: Request, viewer: Viewer, project: str, roles: frozenset[str] = READ_ROLES
    ) -> None:
        """404 for an unknown project, 403 without the role (or from elsewhere); audited."""
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,63}", project):
            raise NotFound(f"no project {project!r}")
        await self.service.check(project, viewer.principal, request_address(request), roles)
        await self.audit.record(request, "web.page", project=project, target=request.url.path)

    async def readable(self, request: Request, viewer: Viewer) -> list[str]:
        """The projects the viewer may read from where they are (role and networks)."""
        return await self.service.readable(viewer.principal, request_address(request))

"""Studies across every project the viewer may read: found by subject label or description,
modality and dates; or, with nothing asked, the latest arrivals."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request, Response
from giftcloud_core.clock import now
from giftcloud_core.errors import BadRequest

from giftcloud_api.web import queries
from giftcloud_api.web.kit import Pages
from giftcloud_api.web.views import MODALITY, Viewer, date_param

#: the most a search or the arrivals list shows
LISTED = 100
#: how far back the arrivals list looks
ARRIVALS_DAYS = 30


def build_router(kit: Pages) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/studies")
    async def studies_page(
        request: Request,
        q: str = "",
        modality: str = "",
        date_from: str = "",
        date_to: str = "",
    ) -> Response:
        """Find studies in all your projects; the latest arrivals when nothing is asked."""

        async def build(viewer: Viewer) -> Response:
            if modality and not MODALITY.fullmatch(modality):
                raise BadRequest(f"{modality[:20]!r} is not a modality (CT, MR, ...)")
            text = q[:64].strip()
            chosen = queries.StudyFilter("", date_param(date_from), date_param(date_to), modality)
            asked = bool(text or modality or date_from or date_to)
            projects = await kit.readable(request, viewer)
            async with kit.service.db.session() as session:
                if asked:
                    found = await queries.find_studies(session, projects, text, chosen, LISTED)
                else:
                    since = now() - timedelta(days=ARRIVALS_DAYS)
                    found = await queries.arrivals(session, projects, since, LISTED)
            await kit.audit.record(
                request,
                "web.search" if asked else "web.page",
                target="/studies",
                detail=f"{text!r} {modality} {date_from}..{date_to}".strip() if asked else "",
            )
            return kit.page(
                request,
                "studies.html",
                viewer,
                asked=asked,
                found=found,
                listed=LISTED,
                days=ARRIVALS_DAYS,
                projects=len(projects),
                filters={"q": q[:64], "modality": modality, "date_from": date_from[:10],
                         "date_to": date_to[:10]},
            )  # fmt: skip

        return await kit.shown(request, build)

    return router

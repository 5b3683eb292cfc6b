"""The web interface: pages rendered here from the catalogue (Jinja2), with a small script
(``static/giftcloud.js``) for what a page does in place: the viewer, the upload, members
and the admin's lists, which it reads and changes through the public API.

Who is signed in comes from the access cookie auth sets at sign-in (HttpOnly,
SameSite=Strict); a page whose cookie has expired sends the browser to auth for a fresh
one (``/auth/session/renew``), and from there, with no live session, to the sign-in page.
A page offers only what the caller may do; the API checks again whatever a page sends.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from giftcloud_core.access import safe_next
from giftcloud_core.app import Runtime
from giftcloud_core.errors import BadRequest, Forbidden, NotFound
from giftcloud_core.gates import OWNER, REVIEWERS_ONLY
from giftcloud_core.signin import failure_message
from giftcloud_core.tokens import WRITE_ROLES
from starlette.exceptions import HTTPException

from giftcloud_api.catalogue import reads
from giftcloud_api.catalogue.pipeline import pipeline as pipeline_status
from giftcloud_api.catalogue.service import CatalogueService
from giftcloud_api.federation.criteria import ATTRIBUTES
from giftcloud_api.models import Project, Series, Study
from giftcloud_api.ohif import routes as ohif_routes
from giftcloud_api.ohif.install import installed
from giftcloud_api.results.service import files_of
from giftcloud_api.results.service import of_study as study_results
from giftcloud_api.web import queries, studies
from giftcloud_api.web.kit import Pages
from giftcloud_api.web.views import (
    MODALITY,
    PAGE_SIZE,
    STATIC,
    STATIC_TYPES,
    STATIC_VERSION,
    UID_PATTERN,
    Viewer,
    date_param,
    start_context,
)


def build_router(service: CatalogueService, runtime: Runtime, services: list[str]) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    kit = Pages(service, runtime)
    router.include_router(studies.build_router(kit))
    folder = runtime.settings.api.ohif_dir
    ohif = installed(folder) if folder else None
    router.include_router(ohif_routes.build_router(kit, ohif))
    page, shown, project_for = kit.page, kit.shown, kit.project_for

    # --- the pages ---------------------------------------------------------------------

    @router.get("/")
    async def home(request: Request) -> Response:
        """The projects the viewer has a role on, with their counts."""

        async def build(viewer: Viewer) -> Response:
            rows = await service.projects(viewer.principal)
            async with service.db.session() as session:
                counts = await queries.summaries(session, [p.name for p in rows])
            return page(
                request,
                "projects.html",
                viewer,
                projects=[(p, counts[p.name], viewer.role(p.name)) for p in rows],
            )

        return await shown(request, build)

    @router.get("/signin")
    async def signin(
        request: Request, next: str = "/", failed: str = "", signed_out: str = ""
    ) -> Response:
        return page(
            request,
            "signin.html",
            None,
            next=safe_next(next),
            failure=failure_message(failed),
            signed_out=bool(signed_out),
            single_sign_on=bool(runtime.settings.auth.oidc_issuer),
        )

    @router.get("/start")
    async def start(request: Request) -> Response:
        """Getting started with the command line and DICOMweb (no sign-in needed)."""
        base = str(request.base_url).rstrip("/")
        return page(request, "start.html", None, **start_context(services, base))

    @router.get("/projects/{project}")
    async def project_page(
        request: Request,
        project: str,
        subject: str = "",
        date_from: str = "",
        date_to: str = "",
        modality: str = "",
        page_number: str = "1",
    ) -> Response:
        """The project's studies by subject: search, filter and pages."""

        async def build(viewer: Viewer) -> Response:
            await project_for(request, viewer, project)
            if modality and not MODALITY.fullmatch(modality):
                raise BadRequest(f"{modality[:20]!r} is not a modality (CT, MR, ...)")
            number = int(page_number) if page_number.isdigit() and len(page_number) < 8 else 0
            if number < 1:
                raise BadRequest(f"page {page_number[:12]!r}: pages are numbered from 1")
            chosen = queries.StudyFilter(
                subject[:64].strip(), date_param(date_from), date_param(date_to), modality
            )
            offset = (number - 1) * PAGE_SIZE
            async with service.db.session() as session:
                studies, total = await queries.browse_studies(
                    session, project, chosen, PAGE_SIZE, offset
                )
                counts = (await queries.summaries(session, [project]))[project]
                subject_sizes = await queries.subject_sizes(
                    session, project, sorted({s.subject for s in studies})
                )
                found_modalities = await queries.modalities(session, project)
                described = await session.get(Project, project)
            pages = max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE)
            filters = {
                "subject": subject[:64],
                "date_from": date_from[:10],
                "date_to": date_to[:10],
                "modality": modality,
            }
            kept = {k: v for k, v in filters.items() if v}
            return page(
                request,
                "project.html",
                viewer,
                project=project,
                title=described.title if described else "",
                role=viewer.role(project),
                may_write=viewer.may_write(project),
                owns=viewer.owns(project),
                reviews=viewer.reviews(project),
                counts=counts,
                studies=studies,
                total=total,
                page_number=number,
                pages=pages,
                filters=filters,
                modalities=found_modalities,
                subject_sizes=subject_sizes,
                link=lambda n: f"/projects/{project}?{urlencode({**kept, 'page_number': n})}",
            )

        return await shown(request, build)

    @router.get("/projects/{project}/studies/{study}")
    async def study_page(request: Request, project: str, study: str) -> Response:
        """A study's series, each with a thumbnail, counts and its zip."""

        async def build(viewer: Viewer) -> Response:
            await project_for(request, viewer, project)
            if not UID_PATTERN.fullmatch(study):
                raise NotFound(f"no study {study[:64]!r} in project {project!r}")
            async with service.db.session() as session:
                found = await session.get(Study, (project, study))
                if found is None:
                    raise NotFound(f"no study {study} in project {project!r}")
                series = await reads.series_of(session, project, study)
                sizes = await queries.series_sizes(session, project, study)
            files = await files_of(service.db, project, study)
            for attached in files:  # in the zips of what they are attached to
                if attached.series_uid:
                    sizes[attached.series_uid] = sizes.get(attached.series_uid, 0) + attached.size
            study_size = sum(sizes.values()) + sum(
                f.size for f in files if f.study_uid == study and not f.series_uid
            )
            return page(
                request,
                "study.html",
                viewer,
                project=project,
                study=found,
                series=series,
                sizes=sizes,
                study_size=study_size,
                results=await study_results(service.db, project, study),
                files=files,
                described={s.series_uid: s.description or s.modality for s in series},
                ohif=ohif_routes.study_link(project, study) if ohif else None,
            )

        return await shown(request, build)

    @router.get("/projects/{project}/studies/{study}/series/{series}")
    async def series_page(request: Request, project: str, study: str, series: str) -> Response:
        """The viewer: every frame of every instance of a series, one at a time."""

        async def build(viewer: Viewer) -> Response:
            await project_for(request, viewer, project)
            if not (UID_PATTERN.fullmatch(study) and UID_PATTERN.fullmatch(series)):
                raise NotFound(f"no series {series[:64]!r} in project {project!r}")
            async with service.db.session() as session:
                instances = await reads.frame_counts(session, project, study, series)
                described = await session.get(Series, (project, series))
            if not instances or described is None or described.study_uid != study:
                raise NotFound(f"no series {series} of study {study} in project {project!r}")
            base = f"/dicomweb/{project}/studies/{study}/series/{series}/instances"
            frames = [
                f"{base}/{sop}/frames/{n}/rendered"
                for sop, count in instances
                for n in range(1, count + 1)
            ]
            return page(
                request,
                "viewer.html",
                viewer,
                project=project,
                study=study,
                series=described,
                frames=frames,
                modality=described.modality,
            )

        return await shown(request, build)

    @router.get("/projects/{project}/upload")
    async def upload_page(request: Request, project: str) -> Response:
        async def build(viewer: Viewer) -> Response:
            await project_for(request, viewer, project, WRITE_ROLES)
            return page(request, "upload.html", viewer, project=project)

        return await shown(request, build)

    @router.get("/projects/{project}/uploads")
    async def uploads_page(request: Request, project: str) -> Response:
        """The project's latest uploads, any way in, each refusal and rejection with why."""

        async def build(viewer: Viewer) -> Response:
            await project_for(request, viewer, project, WRITE_ROLES)
            owns = viewer.owns(project)
            return page(request, "uploads.html", viewer, project=project, owns=owns)

        return await shown(request, build)

    @router.get("/projects/{project}/quarantine")
    async def quarantine_page(request: Request, project: str) -> Response:
        """What de-identification refused, for the project's owners to release or delete."""

        async def build(viewer: Viewer) -> Response:
            await project_for(request, viewer, project, OWNER)
            return page(request, "quarantine.html", viewer, project=project)

        return await shown(request, build)

    @router.get("/projects/{project}/returns")
    async def returns_page(request: Request, project: str) -> Response:
        """Results back from the hub, for a reidentifier to approve or decline."""

        async def build(viewer: Viewer) -> Response:
            await project_for(request, viewer, project, WRITE_ROLES)
            if not viewer.reviews(project):
                raise Forbidden(REVIEWERS_ONLY)
            return page(request, "returns.html", viewer, project=project)

        return await shown(request, build)

    @router.get("/projects/{project}/federation")
    async def federation_page(request: Request, project: str) -> Response:
        """Ask the hub's sites a count; each site's released answer and the pooled one."""

        async def build(viewer: Viewer) -> Response:
            await project_for(request, viewer, project)
            return page(request, "federation.html", viewer, project=project, attributes=ATTRIBUTES)

        return await shown(request, build)

    @router.get("/projects/{project}/federation/jobs")
    async def jobs_page(request: Request, project: str) -> Response:
        """Run an approved algorithm at the hub's sites; each site's state and output."""

        async def build(viewer: Viewer) -> Response:
            await project_for(request, viewer, project)
            return page(request, "jobs.html", viewer, project=project, attributes=ATTRIBUTES)

        return await shown(request, build)

    @router.get("/projects/{project}/federation/flower")
    async def flower_runs_page(request: Request, project: str) -> Response:
        """Run a Flower app of the hub's catalogue at the sites; its state and result."""

        async def build(viewer: Viewer) -> Response:
            await project_for(request, viewer, project)
            return page(request, "flower-runs.html", viewer, project=project)

        return await shown(request, build)

    @router.get("/site/federation")
    async def site_federation_page(request: Request) -> Response:
        """At a site: its admins set the disclosure policy and approve code (the jobs'
        algorithms, Flower apps); its data steward releases or withholds job outputs."""

        async def build(viewer: Viewer) -> Response:
            if not (viewer.is_admin or viewer.is_steward):
                raise Forbidden("this page is for the site's admins and its data steward")
            return page(request, "site-federation.html", viewer)

        return await shown(request, build)

    @router.get("/projects/{project}/members")
    async def members_page(request: Request, project: str) -> Response:
        async def build(viewer: Viewer) -> Response:
            await project_for(request, viewer, project, OWNER)
            return page(request, "members.html", viewer, project=project)

        return await shown(request, build)

    @router.get("/projects/{project}/deidentification")
    async def deidentification_page(request: Request, project: str) -> Response:
        """The project's profile options and burned-in attestations (owners change them)."""

        async def build(viewer: Viewer) -> Response:
            await project_for(request, viewer, project)
            return page(
                request,
                "deidentification.html",
                viewer,
                project=project,
                owns=viewer.owns(project),
            )

        return await shown(request, build)

    @router.get("/admin")
    async def admin_page(request: Request) -> Response:
        async def build(viewer: Viewer) -> Response:
            if not viewer.is_admin:
                raise Forbidden("the admin pages are for admins")
            pipeline = await pipeline_status(service.db, runtime.bus)
            return page(request, "admin.html", viewer, pipeline=pipeline)

        return await shown(request, build)

    @router.get("/static/{name}")
    async def static(name: str, v: str = "") -> Response:
        """A page's stylesheet or script; kept a year when asked for by this version (its
        URL changes with any file), five minutes otherwise."""
        path = STATIC / name
        if not re.fullmatch(r"[a-z0-9-]+\.(css|js|txt)", name) or not path.is_file():
            raise HTTPException(404, "Not Found")
        cache = (
            "public, max-age=31536000, immutable" if v == STATIC_VERSION else "public, max-age=300"
        )
        return FileResponse(
            path, media_type=STATIC_TYPES[path.suffix], headers={"Cache-Control": cache}
        )

    return router

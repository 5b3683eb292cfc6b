"""The web interface's server side, without a browser: the sign-in form and the session's
cookies, CSRF on every unsafe request, cookies never enough for a change, expired cookies
renewed, readable refusals, the project page's search and pages over 10,000 studies (from
an index), and the admin's pipeline figures."""

import re
import time
from collections.abc import Callable
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
from giftcloud.client import multipart_related
from giftcloud_api.app import build as build_api
from giftcloud_api.web.queries import StudyFilter, browse_query
from giftcloud_api.web.views import STATIC_VERSION, static_version
from giftcloud_core.app import Runtime
from giftcloud_core.events import QUEUES, ProjectCreated
from integration.conftest import eventually, running
from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from support.dicom_files import synthetic_instance
from support.site import ADMIN_PASSWORD, site, wait_until
from support.stack import Stack

Bearer = Callable[..., dict[str, str]]


def cookies_set(response: httpx.Response) -> dict[str, SimpleCookie]:
    found = {}
    for header in response.headers.get_list("set-cookie"):
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        for name in cookie:
            found[name] = cookie
    return found


def csrf_of(page: httpx.Response) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match is not None, page.text[:500]
    return match.group(1)


async def test_sign_in_session_cookies_and_csrf(stack: Stack) -> None:
    async with site(stack.settings()) as s, s.client() as browser:
        admin = await s.token()
        made = await browser.post("/auth/projects", json={"name": "web"}, headers=admin)
        assert made.status_code == 201

        async def known() -> bool:
            return (
                await browser.get("/api/projects/web/subjects", headers=admin)
            ).status_code == 200

        await wait_until(known, "api knows the project")

        # no cookie: to renewal, and from there (no session) to the sign-in page
        page = await browser.get("/projects/web")
        assert page.status_code == 303
        assert page.headers["location"] == "/auth/session/renew?next=%2Fprojects%2Fweb"
        renew = await browser.get(page.headers["location"])
        assert renew.headers["location"] == "/signin?next=%2Fprojects%2Fweb"
        form = await browser.get(renew.headers["location"])
        assert form.status_code == 200 and "Content-Security-Policy" in form.headers
        csrf = csrf_of(form)
        cookie = cookies_set(form)["giftcloud_csrf"]["giftcloud_csrf"]
        assert cookie.value == csrf and cookie["httponly"] and cookie["samesite"] == "strict"

        def login(**fields: str) -> dict[str, str]:
            return {
                "username": "admin",
                "password": ADMIN_PASSWORD,
                "next": "/projects/web",
                **fields,
            }

        # a form from elsewhere (no csrf, or another one) is refused, and says so
        for forged in ({}, {"csrf": "x" * 32}):
            answer = await browser.post("/auth/session/login", data=login(**forged))
            assert answer.headers["location"] == "/signin?next=%2Fprojects%2Fweb&failed=expired"
        wrong = await browser.post(
            "/auth/session/login", data=login(csrf=csrf, password="not it at all")
        )
        assert wrong.headers["location"].endswith("&failed=credentials")
        shown = await browser.get(wrong.headers["location"])
        assert "Wrong username or password." in shown.text
        # next is a path on this site, never another one
        elsewhere = await browser.post(
            "/auth/session/login", data=login(csrf=csrf, next="//evil.example/x")
        )
        assert elsewhere.status_code == 303 and elsewhere.headers["location"] == "/"
        browser.cookies.clear()
        browser.cookies.set("giftcloud_csrf", csrf)
        signed = await browser.post("/auth/session/login", data=login(csrf=csrf))
        assert signed.status_code == 303 and signed.headers["location"] == "/projects/web"
        cookies = cookies_set(signed)
        session = cookies["giftcloud_session"]["giftcloud_session"]
        access = cookies["giftcloud_access"]["giftcloud_access"]
        assert session["path"] == "/auth/session" and access["path"] == "/"
        for c in (session, access):
            assert c["httponly"] and c["samesite"] == "strict" and not c["secure"]  # plain HTTP

        page = await browser.get("/projects/web")
        assert page.status_code == 200 and "0 studies match." in page.text
        assert (await browser.get("/api/projects")).status_code == 200  # a GET: the cookie does
        # a change never rides on a cookie: it needs the bearer header a script sends
        refused = await browser.post("/auth/projects", json={"name": "by-cookie"})
        assert refused.status_code == 401
        assert (await browser.post("/auth/session/token")).status_code == 403  # no CSRF proof
        token = await browser.post("/auth/session/token", headers={"X-Requested-With": "giftcloud"})
        assert token.status_code == 200 and token.json()["expires_in"] > 0
        again = await browser.post("/auth/session/token", data={"csrf": csrf})  # the form's proof
        assert again.status_code == 200  # and the session was not used up by the first

        # an expired access cookie: renewed from the session, back to the same page
        browser.cookies.delete("giftcloud_access")
        page = await browser.get("/projects/web?subject=x")
        renew = await browser.get(page.headers["location"])
        assert renew.status_code == 303 and renew.headers["location"] == "/projects/web?subject=x"
        assert "giftcloud_access" in cookies_set(renew)
        assert (await browser.get("/projects/web")).status_code == 200

        # readable refusals
        missing = await browser.get("/projects/nothing")
        assert missing.status_code == 404 and "no project &#39;nothing&#39;" in missing.text
        assert (await browser.get("/projects/web?date_from=2024-13-45")).status_code == 400
        assert (await browser.get("/projects/web?modality=%3Cscript%3E")).status_code == 400
        for page_number in ("0", "abc", "-1", "99999999999"):
            refused = await browser.get(f"/projects/web?page_number={page_number}")
            assert refused.status_code == 400 and "pages are numbered from 1" in refused.text

        # sign out: a form without the proof is refused; with it, the session ends
        assert (await browser.post("/auth/session/logout")).status_code == 403
        out = await browser.post("/auth/session/logout", data={"csrf": csrf})
        assert out.status_code == 303 and out.headers["location"] == "/signin?signed_out=1"
        gone = cookies_set(out)
        assert gone["giftcloud_access"]["giftcloud_access"]["max-age"] == "0"
        browser.cookies.delete("giftcloud_access")
        page = await browser.get("/projects/web")
        renew = await browser.get(page.headers["location"])
        assert renew.headers["location"].startswith("/signin?")  # the session is over
        # and so is every access token it gave (the cookie's, the scripts')
        script = {"Authorization": f"Bearer {token.json()['access_token']}"}
        ended = await browser.get("/api/projects", headers=script)
        assert ended.status_code == 401 and "revoked" in ended.json()["detail"]


async def test_cookies_are_secure_over_tls(stack: Stack) -> None:
    settings = stack.settings(network={"trusted_proxies": ["127.0.0.1/32"]})
    async with site(settings) as s, s.client() as browser:
        form = await browser.get("/signin", headers={"X-Forwarded-Proto": "https"})
        csrf = csrf_of(form)
        host_only = "__Host-giftcloud_csrf"  # no sibling origin can set it
        assert cookies_set(form)[host_only][host_only]["secure"]
        assert cookies_set(form)[host_only][host_only]["path"] == "/"
        # a pair a sibling origin could plant (the plain cookie and a form it wrote) is refused
        planted = "p" * 24
        browser.cookies.set(host_only, "")
        browser.cookies.set("giftcloud_csrf", planted)
        forged = await browser.post(
            "/auth/session/login",
            data={"username": "admin", "password": ADMIN_PASSWORD, "csrf": planted, "next": "/"},
            headers={"X-Forwarded-Proto": "https"},
        )
        assert forged.status_code == 303 and "failed=expired" in forged.headers["location"]
        assert "giftcloud_session" not in cookies_set(forged)  # not signed in
        browser.cookies.delete("giftcloud_csrf")
        browser.cookies.set(host_only, csrf)
        signed = await browser.post(
            "/auth/session/login",
            data={"username": "admin", "password": ADMIN_PASSWORD, "csrf": csrf, "next": "/"},
            headers={"X-Forwarded-Proto": "https"},
        )
        assert signed.status_code == 303
        for name, cookie in cookies_set(signed).items():
            assert cookie[name]["secure"], name


async def test_static_files_and_the_getting_started_page(stack: Stack) -> None:
    async with site(stack.settings()) as s, s.client() as browser:
        script = await browser.get("/static/giftcloud.js")
        assert script.status_code == 200 and script.headers["content-type"].startswith(
            "text/javascript"
        )
        for name in ("../app.py", "nothing.js", "%2e%2e%2fweb.py", "GIFTCLOUD.CSS"):
            assert (await browser.get(f"/static/{name}")).status_code == 404, name
        start = await browser.get("/start")
        assert start.status_code == 200 and "scripts/giftcloud project create demo" in start.text
        # a page names its files by their version: kept long, and never mixed after an upgrade
        linked = re.findall(r'(?:src|href)="(/static/[a-z0-9.-]+\?v=[0-9a-f]{12})"', start.text)
        assert sorted(linked) == [
            f"/static/giftcloud.css?v={STATIC_VERSION}",
            f"/static/giftcloud.js?v={STATIC_VERSION}",
        ], linked
        kept = await browser.get(linked[0])
        assert kept.headers["cache-control"] == "public, max-age=31536000, immutable"
        old = await browser.get("/static/giftcloud.css?v=000000000000")
        assert old.status_code == 200 and old.headers["cache-control"] == "public, max-age=300"


def test_the_files_version_changes_with_any_file(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_text("one")
    (tmp_path / "b.css").write_text("two")
    before = static_version(tmp_path)
    (tmp_path / "b.css").write_text("two!")
    assert static_version(tmp_path) != before and len(before) == 12


async def test_the_project_page_pages_10000_studies_from_an_index(
    runtime: Runtime, bearer: Bearer
) -> None:
    owner = bearer("olga", projects={"big": "owner"})["Authorization"].split()[1]
    async with running(runtime, [build_api(runtime)]) as client:
        await runtime.bus.publish(ProjectCreated(project="big", title="Big", correlation_id="c"))

        async def known() -> bool:
            async with runtime.db.session() as session:
                found = await session.exec(text("SELECT count(*) FROM api.projects"))
                return bool(found.one()[0])

        await eventually(known, what="api knows the project")
        async with runtime.db.session() as session:
            await session.exec(
                text(
                    """INSERT INTO api.studies (project, study_uid, subject, study_date,
                       description, attributes, modalities, series_count, instance_count,
                       patient_name)
                    SELECT p, '2.25.' || n, 'SUBJ-' || lpad((n / 5)::text, 5, '0'),
                       to_char(date '2020-01-01' + (n % 1000), 'YYYYMMDD'), 'Study ' || n,
                       '{}', CASE WHEN n % 2 = 0 THEN ARRAY['MR'] ELSE ARRAY['CT', 'SR'] END,
                       2, 40, ''
                    FROM generate_series(0, 9999) AS n, unnest(ARRAY['big', 'other']) AS p"""
                )
            )
            await session.exec(text("ANALYZE api.studies"))
        client.cookies.set("giftcloud_access", owner)

        for query in ("", "?page_number=200", "?subject=subj-0012", "?modality=CT&page_number=50"):
            started = time.perf_counter()
            assert (await client.get(f"/projects/big{query}")).status_code == 200
            print(f"/projects/big{query}: {(time.perf_counter() - started) * 1000:.0f} ms")
        first = await client.get("/projects/big")
        assert first.status_code == 200
        assert "10000 studies match: page 1 of 200." in first.text
        assert first.text.count("/projects/big/studies/2.25.") == 50
        last = await client.get("/projects/big?page_number=200")
        assert "page 200 of 200" in last.text  # studies 9950-9999: subjects 1990-1999
        assert "SUBJ-01990" in last.text and "SUBJ-01999" in last.text
        assert "SUBJ-01989" not in last.text
        cases = {
            "subject=subj-0012": 5 * 10,  # SUBJ-00120..00129, in any case
            "modality=CT": 5000,
            "date_from=2020-01-01&date_to=2020-01-10": 10 * 10,
            "modality=MR&subject=SUBJ-0000": 25,  # SUBJ-00000..00009: 50, half MR
        }
        for query, expected in cases.items():
            page = await client.get(f"/projects/big?{query}")
            assert f"{expected} stud" in page.text, (query, page.text[:300])
        # keeps the filters from page to page
        paged = await client.get("/projects/big?modality=CT&page_number=2")
        links = re.findall(r'href="(/projects/big\?[^"]+)" rel="next"', paged.text)
        assert links and parse_qs(urlsplit(links[0].replace("&amp;", "&")).query) == {
            "modality": ["CT"],
            "page_number": ["3"],
        }

        # the page's own statement, as PostgreSQL plans it with another project beside:
        # read in order from the index, not every study read and sorted
        statement = browse_query("big", StudyFilter(), 50, 9950).compile(
            dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
        )
        async with runtime.db.session() as session:
            plan = await session.exec(text(f"EXPLAIN {statement}"))
            lines = "\n".join(row[0] for row in plan.all())
        assert "Index Scan using studies_by_subject_date" in lines, lines
        assert "Sort" not in lines, lines


async def test_the_pipeline_for_admins(stack: Stack) -> None:
    """A real rejection: a hub (verify mode) refuses an instance that was never
    de-identified; anonymise quarantines it, api keeps it, the admin sees it with the reason."""
    password = "a-long-enough-password"
    async with site(stack.settings(anonymise={"mode": "verify"})) as s, s.client() as client:
        admin = await s.token()
        await client.post("/auth/projects", json={"name": "proj"}, headers=admin)
        for name in ("olga", "stranger"):
            made = await client.post(
                "/auth/users", json={"username": name, "password": password}, headers=admin
            )
            assert made.status_code == 201, made.text
        await client.put(
            "/auth/projects/proj/members", json={"username": "olga", "role": "owner"}, headers=admin
        )
        owner = await s.token("olga", password)

        async def known() -> bool:
            return (await client.get("/ingest/proj/uploads", headers=admin)).status_code == 200

        await wait_until(known, "ingest knows the project")
        body, content_type = multipart_related([synthetic_instance()])  # identifiable
        sent = await client.post(
            "/dicomweb/proj/studies",
            content=body,
            headers={**admin, "Content-Type": content_type},
        )
        assert sent.status_code == 200, sent.text
        upload = sent.headers["x-giftcloud-upload"]

        async def quarantined() -> bool:
            answer = await client.get("/api/pipeline", headers=admin)
            return answer.status_code == 200 and answer.json()["quarantined"] == 1

        await wait_until(quarantined, "the rejection kept")
        figures = (await client.get("/api/pipeline", headers=admin)).json()
        assert [q["queue"] for q in figures["queues"]] == list(QUEUES)
        assert all(
            isinstance(q["waiting"], int) and q["dead_letters"] == 0 for q in figures["queues"]
        )
        held = figures["latest_quarantined"][0]
        assert held["project"] == "proj" and held["upload"] == upload, held
        assert held["object"] == f"proj/{upload}/000000.dcm", held
        assert "PatientIdentityRemoved" in held["reason"], held
        assert figures["archived_last_minute"] == figures["archived_last_hour"] == 0
        refused = await client.get("/api/pipeline", headers=owner)
        assert refused.status_code == 403 and "for admins" in refused.json()["detail"]

        client.cookies.set("giftcloud_access", admin["Authorization"].split()[1])
        page = await client.get("/admin")
        assert page.status_code == 200
        assert "Quarantined: 1" in page.text and held["reason"] in page.text.replace("&#39;", "'")
        client.cookies.set("giftcloud_access", owner["Authorization"].split()[1])
        assert (await client.get("/admin")).status_code == 403
        stranger = await s.token("stranger", password)
        client.cookies.set("giftcloud_access", stranger["Authorization"].split()[1])
        assert (await client.get("/projects/proj")).status_code == 403
        async with s.runtime.db.session() as session:  # refused pages are in the audit trail
            rows = await session.exec(
                text(
                    "SELECT actor, action, project, outcome FROM api.audit WHERE outcome = 'denied'"
                )
            )
            denied = {tuple(row) for row in rows.all()}
        assert ("olga", "GET /admin", "", "denied") in denied, denied
        assert ("stranger", "GET /projects/{project}", "proj", "denied") in denied, denied

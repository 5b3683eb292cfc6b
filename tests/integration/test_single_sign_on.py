"""Single sign-on against a real OpenID Connect provider (node-oidc-provider, from the npm
registry, run here on 127.0.0.1): authorization code with PKCE, accounts matched or made
by the provider's subject and verified email, roles kept in giftcloud, the browser session
that follows, and the ways a sign-in is refused."""

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
from support.infra import free_port, stop_process, wait_for
from support.site import Site, site, wait_until
from support.stack import Stack

PROVIDER = Path(__file__).resolve().parents[1] / "support" / "oidc"
SECRET = "giftcloud-oidc-test-secret"
BASE = "http://testserver"  # where the test's browser reaches giftcloud (in process)


@pytest.fixture(scope="module")
def identity_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("node and npm are missing: scripts/test installs them")
    if not (PROVIDER / "node_modules" / "oidc-provider").is_dir():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=PROVIDER, check=True, capture_output=True
        )
    port = free_port()
    log = tmp_path_factory.mktemp("idp") / "provider.log"
    process = subprocess.Popen(
        [node, "provider.mjs", str(port), f"{BASE}/auth/oidc/callback", SECRET],
        cwd=PROVIDER,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    issuer = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: httpx.get(f"{issuer}/.well-known/openid-configuration").status_code == 200,
            timeout=30,
            what="the identity provider",
        )
        yield issuer
    finally:
        stop_process(process)


async def sign_in(
    s: Site, browser: httpx.AsyncClient, login: str, next_path: str = "/"
) -> httpx.Response:
    """What a person does in a browser: start at giftcloud, sign in at the provider, come back."""
    start = await browser.get("/auth/oidc/login", params={"next": next_path})
    assert start.status_code == 302, start.text
    async with httpx.AsyncClient() as provider:  # the provider's own cookies
        page = await provider.get(start.headers["location"], follow_redirects=True)
        action = re.search(r'<form[^>]*action="([^"]+)"', page.text)
        assert action is not None, page.text[:500]
        answer = await provider.post(
            urljoin(str(page.url), action.group(1)),
            data={"prompt": "login", "login": login, "password": "anything"},
        )
        while answer.headers.get("location", "").startswith(("/", "http://127.0.0.1")):
            answer = await provider.get(urljoin(str(answer.url), answer.headers["location"]))
    back = urlsplit(answer.headers["location"])
    assert f"{back.scheme}://{back.netloc}" == BASE and back.path == "/auth/oidc/callback"
    return await browser.get(f"{back.path}?{back.query}")


async def session_token(browser: httpx.AsyncClient) -> dict[str, str]:
    response = await browser.post("/auth/session/token", headers={"X-Requested-With": "giftcloud"})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def settings_for(stack: Stack, issuer: str, **auth: object):  # type: ignore[no-untyped-def]
    return stack.settings(
        auth={
            "oidc_issuer": issuer,
            "oidc_client_id": "giftcloud",
            "oidc_client_secret": SECRET,
            **auth,
        },
        public_url=BASE,
    )


async def test_people_sign_in_with_their_institutions_provider(
    stack: Stack, identity_provider: str
) -> None:
    async with site(settings_for(stack, identity_provider)) as s:
        admin = await s.token()
        async with s.client() as client:
            for name, email in (
                ("grace", "grace@hospital.example"),
                ("dora", "dora@hospital.example"),
            ):
                made = await client.post(
                    "/auth/users", json={"username": name, "email": email}, headers=admin
                )
                assert made.status_code == 201, made.text
            await client.post("/auth/projects", json={"name": "sso"}, headers=admin)
            await client.put(
                "/auth/projects/sso/members",
                json={"username": "grace", "role": "member"},
                headers=admin,
            )

            async def known() -> bool:
                return (await client.get("/dicomweb/sso/studies", headers=admin)).status_code == 200

            await wait_until(known, "api knows the project")

        # a new person: an account made at first sign-in, with no role anywhere
        async with s.client() as browser:
            back = await sign_in(s, browser, "ada", next_path="/dicomweb/sso/studies")
            assert back.status_code == 303 and back.headers["location"] == "/dicomweb/sso/studies"
            cookie = back.headers["set-cookie"]
            assert (
                "HttpOnly" in cookie
                and "SameSite=strict" in cookie
                and "Path=/auth/session" in cookie
            )
            assert (await browser.get("/auth/session")).json()["username"] == "ada.lovelace"
            refused = await browser.post(
                "/auth/session/token"
            )  # no X-Requested-With: a forged form
            assert refused.status_code == 403
            ada = await session_token(browser)
            assert (await browser.get("/dicomweb/sso/studies", headers=ada)).status_code == 403
            async with s.client() as client:
                await client.put(
                    "/auth/projects/sso/members",
                    json={"username": "ada.lovelace", "role": "collaborator"},
                    headers=admin,
                )
            ada = await session_token(browser)  # a fresh token carries the new role
            assert (await browser.get("/dicomweb/sso/studies", headers=ada)).status_code == 200
            out = await browser.post(
                "/auth/session/logout", headers={"X-Requested-With": "giftcloud"}
            )
            assert out.status_code == 204
            assert (await browser.get("/auth/session")).status_code == 401

        # an existing account with the same verified email is the same person: linked
        async with s.client() as browser:
            await sign_in(s, browser, "grace")
            assert (await browser.get("/auth/session")).json()["username"] == "grace"
            grace = await session_token(browser)
            assert (await browser.get("/dicomweb/sso/studies", headers=grace)).status_code == 200

        # an unverified email links nothing: 'Not Dora' does not become dora
        async with s.client() as browser:
            await sign_in(s, browser, "mallory")
            assert (await browser.get("/auth/session")).json()["username"] == "dora-2"

        # a disabled account does not sign in, by SSO either
        async with s.client() as client:
            await client.patch("/auth/users/grace", json={"disabled": True}, headers=admin)
        async with s.client() as browser:
            refused = await sign_in(s, browser, "grace")
            assert refused.status_code == 403 and "disabled" in refused.text

        # a callback this browser did not start (login CSRF), and a code used twice
        async with s.client() as victim, s.client() as attacker:
            start = await attacker.get("/auth/oidc/login")
            state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
            forged = await victim.get("/auth/oidc/callback", params={"code": "x", "state": state})
            assert forged.status_code == 401 and "not started in this browser" in forged.text
        async with s.client() as browser:
            start = await browser.get("/auth/oidc/login")
            replay = await browser.get(
                "/auth/oidc/callback", params={"code": "x", "state": "not-this-one"}
            )
            assert replay.status_code == 401

        expected = {
            ("ada.lovelace", "success"),
            ("grace", "success"),
            ("grace", "denied"),
        }

        async def recorded() -> bool:  # auth's records come to api through the bus
            async with s.client() as client:
                trail = await client.get(
                    "/api/audit", params={"action": "auth.sign-in", "limit": 100}, headers=admin
                )
            sso = [r for r in trail.json() if "single sign-on" in r["detail"]]
            return {(r["actor"], r["outcome"]) for r in sso} >= expected

        await wait_until(recorded, "the single sign-ons in the audit trail")


async def test_a_site_that_makes_no_accounts_for_strangers(
    stack: Stack, identity_provider: str
) -> None:
    async with site(settings_for(stack, identity_provider, oidc_create_users=False)) as s:
        async with s.client() as browser:
            refused = await sign_in(s, browser, "ada")
        assert refused.status_code == 403 and "no giftcloud account" in refused.text


async def test_without_a_provider_single_sign_on_says_so(stack: Stack) -> None:
    async with site(stack.settings()) as s, s.client() as browser:
        page = await browser.get("/auth/oidc/login")
    assert page.status_code == 404 and "not configured" in page.text

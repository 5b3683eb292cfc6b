"""Access control on the real servers, every service in one app: accounts and their life
cycle, machine credentials, network allow-lists, sessions and revocation, signing-key
rotation, sign-in protection, the access audit, security headers."""

import asyncio
import base64
import csv
import io
import re
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from giftcloud.client import multipart_related
from giftcloud_auth.models import Client, SignInFailures
from jose import jwt
from sqlalchemy import text, update
from sqlmodel import col
from support.dicom_files import synthetic_instance
from support.infra import VENV_BIN
from support.site import Site, site, wait_until
from support.stack import Stack

STRONG = " rides a blue bicycle"  # + a name: a password the policy accepts


async def make_user(s: Site, admin: dict[str, str], name: str, **extra: object) -> str:
    password = name + STRONG
    async with s.client() as client:
        response = await client.post(
            "/auth/users", json={"username": name, "password": password, **extra}, headers=admin
        )
    assert response.status_code == 201, response.text
    return password


async def make_project(s: Site, admin: dict[str, str], name: str, **members: str) -> None:
    async with s.client() as client:
        response = await client.post("/auth/projects", json={"name": name}, headers=admin)
        assert response.status_code == 201, response.text
        for username, role in members.items():
            response = await client.put(
                f"/auth/projects/{name}/members",
                json={"username": username, "role": role},
                headers=admin,
            )
            assert response.status_code == 204

    async def known() -> bool:  # ingest and api learn projects from events
        async with s.client() as client:
            qido = await client.get(f"/dicomweb/{name}/studies", headers=admin)
            uploads = await client.get(f"/ingest/{name}/uploads", headers=admin)
        return qido.status_code in (200, 204) and uploads.status_code == 200

    await wait_until(known, f"project {name} known to every service")


async def stow(client: httpx.AsyncClient, project: str, headers: dict[str, str]) -> httpx.Response:
    body, content_type = multipart_related([synthetic_instance()])
    return await client.post(
        f"/dicomweb/{project}/studies",
        content=body,
        headers={**headers, "Content-Type": content_type},
    )


@pytest.fixture
async def hospital(stack: Stack) -> AsyncIterator[Site]:
    async with site(stack.settings()) as running:
        yield running


async def test_an_account_from_invitation_to_deletion(hospital: Site) -> None:
    s = hospital
    admin = await s.token()
    await make_user(s, admin, "olga")
    await make_project(s, admin, "heart", olga="owner")
    olga = await s.token("olga", "olga" + STRONG)
    async with s.client() as client:
        # the owner invites a colleague to the project as a member: a one-time link
        link = await client.post(
            "/auth/invites", json={"project": "heart", "role": "member"}, headers=olga
        )
        assert link.status_code == 201, link.text
        token = link.json()["token"]
        assert f"/auth/invite?token={token}" in link.json()["url"]
        page = await client.get(f"/auth/invite?token={token}")
        assert page.status_code == 200 and "<form" in page.text and "<script" not in page.text
        weak = await client.post(
            "/auth/invites/accept",
            json={"token": token, "username": "nina", "password": "password1234"},
        )
        assert weak.status_code == 400 and "commonly used" in weak.json()["detail"]
        made = await client.post(
            "/auth/invites/accept",
            json={"token": token, "username": "Nina", "password": "nina" + STRONG},
        )
        assert made.status_code == 201 and made.json()["username"] == "nina"
        again = await client.post(
            "/auth/invites/accept",
            json={"token": token, "username": "nina2", "password": "nina2" + STRONG},
        )
        assert again.status_code == 409 and "used already" in again.json()["detail"]
        # an owner may not invite with site roles, nor to a project not theirs
        for body in ({"site_roles": ["admin"]}, {"project": "lung", "role": "member"}):
            assert (await client.post("/auth/invites", json=body, headers=olga)).status_code in (
                403,
                404,
            )
        nina = await s.token("nina", "nina" + STRONG)
        assert (await client.get("/auth/me", headers=nina)).json()["projects"] == {
            "heart": "member"
        }

        # an admin's reset link, used through its page (a plain form)
        reset = await client.post("/auth/users/nina/password-reset", headers=admin)
        reset_token = reset.json()["token"]
        done = await client.post(
            "/auth/reset", data={"token": reset_token, "password": "nina has a new bicycle"}
        )
        assert done.status_code == 200 and "Password set" in done.text
        refused = await client.post(
            "/auth/token", data={"username": "nina", "password": "nina" + STRONG}
        )
        assert refused.status_code == 401
        signed_in = await client.post(
            "/auth/token", data={"username": "nina", "password": "nina has a new bicycle"}
        )
        refresh = signed_in.json()["refresh_token"]
        nina = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}

        # disabled: at once, no sign-in, no refresh, no access token, no key
        key = await client.post(
            "/auth/projects/heart/keys", json={"name": "script", "role": "member"}, headers=nina
        )
        assert key.status_code == 201
        api_key = {"Authorization": f"Bearer {key.json()['key']}"}
        assert (await client.get("/dicomweb/heart/studies", headers=api_key)).status_code == 200
        off = await client.patch("/auth/users/nina", json={"disabled": True}, headers=admin)
        assert off.status_code == 200 and off.json()["disabled"] is True
        assert (
            await client.post(
                "/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh}
            )
        ).status_code == 401
        assert (await client.get("/dicomweb/heart/studies", headers=nina)).status_code == 401
        assert (await client.get("/dicomweb/heart/studies", headers=api_key)).status_code == 401
        disabled = await client.post(
            "/auth/token", data={"username": "nina", "password": "nina has a new bicycle"}
        )
        assert disabled.status_code == 401 and "disabled" in disabled.json()["detail"]

        # deleted: the account, its memberships and keys go
        assert (await client.delete("/auth/users/nina", headers=admin)).status_code == 204
        members = await client.get("/auth/projects/heart/members", headers=olga)
        assert [m["username"] for m in members.json()] == ["admin", "olga"]
        keys = await client.get("/auth/projects/heart/keys", headers=olga)
        assert keys.json()[0]["revoked_at"] is not None

        # the site keeps an admin and a project keeps an owner
        last_admin = await client.patch("/auth/users/admin", json={"disabled": True}, headers=admin)
        assert last_admin.status_code == 409
        other_owner = await client.delete("/auth/projects/heart/members/admin", headers=olga)
        assert other_owner.status_code == 204
        last_owner = await client.delete("/auth/projects/heart/members/olga", headers=olga)
        assert last_owner.status_code == 409


async def test_a_key_never_grants_more_than_its_maker_holds(hospital: Site) -> None:
    s = hospital
    admin = await s.token()
    await make_user(s, admin, "mia")
    await make_project(s, admin, "liver", mia="member")
    mia = await s.token("mia", "mia" + STRONG)
    async with s.client() as client:
        too_much = await client.post(
            "/auth/projects/liver/keys", json={"name": "k", "role": "owner"}, headers=mia
        )
        assert too_much.status_code == 403 and "more than its maker" in too_much.json()["detail"]
        made = await client.post(
            "/auth/projects/liver/keys",
            json={"name": "nightly upload", "role": "member", "expires_days": 30},
            headers=mia,
        )
        assert made.status_code == 201
        key = made.json()
        assert key["key"].startswith(key["id"] + "_") and key["id"].startswith("gck_")
        bearer = {"Authorization": f"Bearer {key['key']}"}
        assert (await stow(client, "liver", bearer)).status_code == 200
        listed = (await client.get("/auth/projects/liver/keys", headers=mia)).json()
        assert [k["id"] for k in listed] == [key["id"]]
        assert "key" not in listed[0] and "client_secret" not in listed[0]
        assert listed[0]["last_used_at"] is not None and listed[0]["grants"] == {"liver": "member"}
        # a key cannot make keys
        assert (
            await client.post(
                "/auth/projects/liver/keys", json={"name": "k2", "role": "member"}, headers=bearer
            )
        ).status_code == 403

        # OAuth2 client credentials with HTTP Basic give the same
        basic = base64.b64encode(f"{key['client_id']}:{key['client_secret']}".encode()).decode()
        token = await client.post(
            "/auth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {basic}"},
        )
        assert token.status_code == 200 and "refresh_token" not in token.json()

        # mia becomes a collaborator: her key can read, no longer write
        await client.put(
            "/auth/projects/liver/members",
            json={"username": "mia", "role": "collaborator"},
            headers=admin,
        )
        # the token the service holds for the key was revoked with mia's role: not 401 for
        # 15 minutes, but exchanged again at once, with what mia holds now
        assert (await stow(client, "liver", bearer)).status_code == 403
        assert (await client.get("/dicomweb/liver/studies", headers=bearer)).status_code in (
            200,
            204,
        )

        # revoked: refused at once (mia signs in again: her role changed, so did her tokens)
        mia = await s.token("mia", "mia" + STRONG)
        revoked = await client.delete(f"/auth/projects/liver/keys/{key['id']}", headers=mia)
        assert revoked.status_code == 204
        assert (await client.get("/dicomweb/liver/studies", headers=bearer)).status_code == 401

    # expired: refused with the reason
    async with s.client() as client:
        second = await client.post(
            "/auth/projects/liver/keys", json={"name": "k3", "role": "collaborator"}, headers=mia
        )
        async with s.runtime.db.session() as session:
            row = await session.get(Client, second.json()["id"])
            assert row is not None
            row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
            session.add(row)
        expired = await client.post(
            "/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": second.json()["client_id"],
                "client_secret": second.json()["client_secret"],
            },
        )
        assert expired.status_code == 401 and "expired" in expired.json()["detail"]


async def test_network_allow_lists(stack: Stack) -> None:
    settings = stack.settings(network={"trusted_proxies": ["127.0.0.0/8"]})
    async with site(settings) as s:
        admin = await s.token()
        await make_user(s, admin, "max")
        await make_project(s, admin, "brain", max="member")
        max_ = await s.token("max", "max" + STRONG)
        async with s.client() as client:
            bad = await client.put(
                "/auth/projects/brain/networks",
                json={"networks": ["10.1.0.0/16", "10.1.2.3/8"]},
                headers=admin,
            )
            assert bad.status_code == 400 and "10.1.2.3/8" in bad.json()["detail"]
            done = await client.put(
                "/auth/projects/brain/networks",
                json={"networks": ["10.1.0.0/16", "2001:db8::/32"]},
                headers=admin,
            )
            assert done.json() == {"networks": ["10.1.0.0/16", "2001:db8::/32"]}

        async def status_from(address: str, path: str, **headers: str) -> int:
            async with s.client(address) as client:
                return (await client.get(path, headers={**max_, **headers})).status_code

        async def enforced() -> bool:  # api learns the list from auth's event
            return await status_from("10.2.0.1", "/dicomweb/brain/studies") == 403

        await wait_until(enforced, "the allow-list reaches api")
        qido = "/dicomweb/brain/studies"
        assert await status_from("10.1.2.3", qido) == 200
        assert await status_from("2001:db8::5", qido) == 200
        assert await status_from("10.2.0.1", "/api/projects/brain/subjects") == 403
        assert await status_from("10.2.0.1", "/ingest/brain/uploads") == 403
        async with s.client("10.2.0.1") as client:
            refused = await client.get(qido, headers=admin)  # admins too
            assert refused.status_code == 403
            assert "10.2.0.1 is not among them" in refused.json()["detail"]
            assert (await stow(client, "brain", max_)).status_code == 403
        # X-Forwarded-For counts only from a trusted proxy
        assert await status_from("127.0.0.1", qido, **{"X-Forwarded-For": "10.1.2.3"}) == 200
        assert await status_from("127.0.0.1", qido, **{"X-Forwarded-For": "10.2.0.1"}) == 403
        assert await status_from("192.0.2.1", qido, **{"X-Forwarded-For": "10.1.2.3"}) == 403

        # a key bound to a smaller network
        async with s.client("10.1.2.3") as client:
            key = await client.post(
                "/auth/projects/brain/keys",
                json={"name": "lab pc", "role": "collaborator", "networks": ["10.1.5.0/24"]},
                headers=max_,
            )
        assert key.status_code == 201, key.text
        bound = {"Authorization": f"Bearer {key.json()['key']}"}
        async with s.client("10.1.5.7") as client:
            assert (await client.get(qido, headers=bound)).status_code == 200
        async with s.client("10.1.2.3") as client:
            refused = await client.get(qido, headers=bound)
            assert refused.status_code == 403 and "10.1.5.0/24" in refused.json()["detail"]

        # the site default applies to projects without their own list
        await make_project(s, admin, "lung", max="member")
        async with s.client() as client:
            await client.put("/auth/networks", json={"networks": ["10.9.0.0/16"]}, headers=admin)
        max_ = await s.token("max", "max" + STRONG)

        async def default_enforced() -> bool:
            return await status_from("10.1.2.3", "/dicomweb/lung/studies") == 403

        await wait_until(default_enforced, "the site default reaches api")
        assert await status_from("10.9.1.1", "/dicomweb/lung/studies") == 200
        assert await status_from("10.1.2.3", qido) == 200  # brain keeps its own list


async def test_keys_change_no_ones_rights_and_owners_end_only_their_projects_keys(
    hospital: Site,
) -> None:
    """An owner's key reads and sends, but adds no member, opens no network and invites no
    one (what changes who may do what is done by a person); a project's owner cannot end an
    admin's client that serves other projects too."""
    s = hospital
    admin = await s.token()
    await make_user(s, admin, "olga")
    await make_project(s, admin, "hip", olga="owner")
    await make_project(s, admin, "spine")
    olga = await s.token("olga", "olga" + STRONG)
    async with s.client() as client:
        made = await client.post(
            "/auth/projects/hip/keys", json={"name": "owner key", "role": "owner"}, headers=olga
        )
        assert made.status_code == 201
        key = {"Authorization": f"Bearer {made.json()['key']}"}
        for method, path, body in (
            ("PUT", "/auth/projects/hip/members", {"username": "olga", "role": "member"}),
            ("DELETE", "/auth/projects/hip/members/olga", None),
            ("PUT", "/auth/projects/hip/networks", {"networks": []}),
            ("POST", "/auth/invites", {"project": "hip", "role": "member"}),
            ("POST", "/auth/projects/hip/keys", {"name": "k", "role": "member"}),
        ):
            answer = await client.request(method, path, json=body, headers=key)
            assert answer.status_code == 403, (method, path, answer.text)
            assert "sign in as a person" in answer.json()["detail"]
        assert (await client.get("/dicomweb/hip/studies", headers=key)).status_code in (200, 204)

        forwarder = await client.post(
            "/auth/clients",
            json={
                "name": "site forwarder",
                "grants": [
                    {"project": "hip", "role": "member"},
                    {"project": "spine", "role": "member"},
                ],
            },
            headers=admin,
        )
        assert forwarder.status_code == 201, forwarder.text
        client_id = forwarder.json()["id"]
        refused = await client.delete(f"/auth/projects/hip/keys/{client_id}", headers=olga)
        assert refused.status_code == 403 and "other projects" in refused.json()["detail"]
        assert (await client.delete(f"/auth/clients/{client_id}", headers=admin)).status_code == 204


async def test_sessions_rotate_and_revocation_takes_effect_at_once(hospital: Site) -> None:
    s = hospital
    admin = await s.token()
    await make_user(s, admin, "rob")
    await make_project(s, admin, "knee", rob="member")
    async with s.client() as client:
        first = (
            await client.post("/auth/token", data={"username": "rob", "password": "rob" + STRONG})
        ).json()
        rob = {"Authorization": f"Bearer {first['access_token']}"}
        second = await client.post(
            "/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        )
        assert second.status_code == 200
        assert second.json()["refresh_token"] != first["refresh_token"]
        # the first refresh token shown again: stolen; the whole sign-in ends
        reused = await client.post(
            "/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        )
        assert reused.status_code == 401 and "used before" in reused.json()["detail"]
        after = await client.post(
            "/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": second.json()["refresh_token"]},
        )
        assert after.status_code == 401

        # sign-out ends a sign-in: its refresh tokens and its access tokens, not another's
        third = (
            await client.post("/auth/token", data={"username": "rob", "password": "rob" + STRONG})
        ).json()
        elsewhere = (
            await client.post("/auth/token", data={"username": "rob", "password": "rob" + STRONG})
        ).json()
        third_access = {"Authorization": f"Bearer {third['access_token']}"}
        other_access = {"Authorization": f"Bearer {elsewhere['access_token']}"}
        assert (await client.get("/dicomweb/knee/studies", headers=third_access)).status_code == 200
        assert (
            await client.post("/auth/logout", json={"refresh_token": third["refresh_token"]})
        ).status_code == 204
        refused = await client.get("/dicomweb/knee/studies", headers=third_access)
        assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
        assert (await client.get("/dicomweb/knee/studies", headers=other_access)).status_code == 200
        assert (
            await client.post(
                "/auth/token",
                data={"grant_type": "refresh_token", "refresh_token": third["refresh_token"]},
            )
        ).status_code == 401

        # a removed member: the token in hand stops at once; a new one lacks the project
        fourth = (
            await client.post("/auth/token", data={"username": "rob", "password": "rob" + STRONG})
        ).json()
        rob = {"Authorization": f"Bearer {fourth['access_token']}"}
        assert (await client.get("/dicomweb/knee/studies", headers=rob)).status_code == 200
        await client.delete("/auth/projects/knee/members/rob", headers=admin)
        assert (await client.get("/dicomweb/knee/studies", headers=rob)).status_code == 401
        renewed = await client.post(
            "/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": fourth["refresh_token"]},
        )
        rob = {"Authorization": f"Bearer {renewed.json()['access_token']}"}
        assert (await client.get("/dicomweb/knee/studies", headers=rob)).status_code == 403


async def test_signing_keys_rotate_without_breaking_tokens(stack: Stack) -> None:
    async with site(stack.settings()) as s:
        before = await s.token()
        old_kid = jwt.get_unverified_header(before["Authorization"][7:])["kid"]
        rotated = await asyncio.to_thread(
            subprocess.run,
            [str(VENV_BIN / "giftcloud"), "rotate-signing-key"],
            env=stack.env(),
            capture_output=True,
            text=True,
            check=False,
        )
        assert rotated.returncode == 0, rotated.stderr
        await s.auth.signing.load()  # replicas reload every 10 s; this one now
        async with s.client() as client:
            kids = [
                k["kid"] for k in (await client.get("/auth/.well-known/jwks.json")).json()["keys"]
            ]
        assert len(kids) == 2 and old_kid in kids
        new_kid = next(k for k in kids if k != old_kid)
        assert new_kid in rotated.stdout
        # published first, used after (six minutes later): tokens still come from the old key
        soon = await s.token()
        assert jwt.get_unverified_header(soon["Authorization"][7:])["kid"] == old_kid
        async with s.runtime.db.session() as session:  # six minutes pass
            await session.exec(  # type: ignore[call-overload]
                text(
                    "UPDATE auth.signing_keys SET activates_at = now() - interval '1 second'"
                    f" WHERE kid = '{new_kid}'"
                )
            )
        await s.auth.signing.load()
        later = await s.token()
        assert jwt.get_unverified_header(later["Authorization"][7:])["kid"] == new_kid
        async with s.client() as client:  # a token of the old key stays good until it expires
            assert (await client.get("/auth/me", headers=before)).status_code == 200
            assert (await client.get("/auth/me", headers=later)).status_code == 200
        # the old key leaves the JWKS once its last tokens have expired
        retire = datetime.now(UTC) + timedelta(minutes=6 + 15, seconds=62)
        assert [k["kid"] for k in s.auth.signing.ring.jwks(retire)["keys"]] == [new_kid]


async def test_brute_force_is_slowed_then_locked_and_others_sign_in(hospital: Site) -> None:
    s = hospital
    admin = await s.token()
    await make_user(s, admin, "victim")
    await make_user(s, admin, "bystander")
    real = s.auth.sign_in.hasher
    verified = 0

    class Counting:  # the hasher, counting its verifications
        def verify(self, stored: str, given: str) -> bool:
            nonlocal verified
            verified += 1
            return bool(real.verify(stored, given))

        def hash(self, password: str) -> str:
            return str(real.hash(password))

        def check_needs_rehash(self, stored: str) -> bool:
            return bool(real.check_needs_rehash(stored))

    s.auth.sign_in.hasher = Counting()  # type: ignore[assignment]
    answers: dict[str, list[tuple[int, str]]] = {"victim": [], "ghost": []}
    for name, address in (("victim", "203.0.113.66"), ("ghost", "203.0.113.67")):
        # an account, and a name no account has, each guessed from its own address
        verified = 0
        async with s.client(address) as attacker:
            for attempt in range(100):
                response = await attacker.post(
                    "/auth/token", data={"username": name, "password": f"guess {attempt}"}
                )
                # the lockout's end is a clock time: the two runs may straddle a minute
                detail = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d", "<time>", response.json()["detail"])
                answers[name].append((response.status_code, detail))
        # every evaluated guess costs the same argon2 verification, known name or not
        evaluated = sum(1 for status, _ in answers[name] if status == 401)
        assert (verified, evaluated) == (5, 5), answers[name][:8]
    assert answers["victim"] == answers["ghost"]  # the answers never tell them apart
    statuses = [status for status, _ in answers["victim"]]
    assert statuses[:5] == [401] * 5  # five guesses, then each must wait (2^n s)
    assert statuses[5] == 429 and statuses[-1] == 403
    assert "locked" in answers["victim"][-1][1]
    async with s.client("203.0.113.66") as attacker:
        locked = await attacker.post(
            "/auth/token", data={"username": "victim", "password": "victim" + STRONG}
        )
        assert locked.status_code == 403  # the right password does not open a locked account
    # the lockout is of the account from the guesser's address: its owner elsewhere waits at
    # most a minute (the account's delay), then signs in (an attacker cannot lock him out)
    async with s.client("198.51.100.9") as owner:
        waiting = await owner.post(
            "/auth/token", data={"username": "victim", "password": "victim" + STRONG}
        )
        assert waiting.status_code == 429 and int(waiting.headers["Retry-After"]) <= 60
    async with s.runtime.db.session() as session:  # a minute on
        await session.exec(
            update(SignInFailures)
            .where(col(SignInFailures.key) == "user:victim")
            .values(last_failure_at=datetime.now(UTC) - timedelta(seconds=61))
        )
    await s.token("victim", "victim" + STRONG, address="198.51.100.9")
    async with s.client("203.0.113.66") as attacker:
        still = await attacker.post(
            "/auth/token", data={"username": "victim", "password": "victim" + STRONG}
        )
        assert still.status_code == 403  # the guesser's address stays locked out
    # someone else, from elsewhere, is not held up
    await s.token("bystander", "bystander" + STRONG, address="198.51.100.7")
    async with s.client() as client:
        assert (await client.post("/auth/users/victim/unlock", headers=admin)).status_code == 204
    await s.token("victim", "victim" + STRONG, address="198.51.100.8")


async def test_every_access_leaves_its_record(hospital: Site) -> None:
    s = hospital
    admin = await s.token()
    await make_user(s, admin, "ana")
    await make_user(s, admin, "moe")
    await make_project(s, admin, "spine", ana="owner", moe="member")
    async with s.client("192.0.2.10") as client:
        signed_in = await client.post(
            "/auth/token", data={"username": "ana", "password": "ana" + STRONG}
        )
        ana = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
        refresh = signed_in.json()["refresh_token"]
        await client.post(
            "/auth/token", data={"username": "ana", "password": "wrong password here"}
        )
        refreshed = await client.post(
            "/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh}
        )
        await client.post("/auth/logout", json={"refresh_token": refreshed.json()["refresh_token"]})
        # signed out: that sign-in's access token ended with it; ana signs in again
        again = await client.post(
            "/auth/token", data={"username": "ana", "password": "ana" + STRONG}
        )
        ana = {"Authorization": f"Bearer {again.json()['access_token']}"}
        await client.put(
            "/auth/projects/spine/members",
            json={"username": "admin", "role": "member"},
            headers=ana,
        )
        key = (
            await client.post(
                "/auth/projects/spine/keys", json={"name": "k", "role": "member"}, headers=ana
            )
        ).json()
        stored = await stow(client, "spine", {"Authorization": f"Bearer {key['key']}"})
        assert stored.status_code == 200
        await client.delete(f"/auth/projects/spine/keys/{key['id']}", headers=ana)
        await client.put("/auth/projects/spine/networks", json={"networks": []}, headers=ana)

        async def archived() -> bool:
            response = await client.get("/dicomweb/spine/studies", headers=ana)
            return response.status_code == 200 and bool(response.json())

        await wait_until(archived, "the instance archived")
        study = (await client.get("/dicomweb/spine/studies", headers=ana)).json()[0]
        study_uid = study["0020000D"]["Value"][0]
        await client.get(f"/dicomweb/spine/studies/{study_uid}", headers=ana)
        await client.get("/api/projects/spine/subjects", headers=ana)
        moe = await s.token("moe", "moe" + STRONG)  # a member: no audit trail for him
        await client.get("/auth/projects/spine/members", headers=moe)  # refused, and recorded

        expected = {
            ("auth.member-set", "success"),
            ("auth.key-create", "success"),
            ("auth.key-use", "success"),
            ("auth.key-revoke", "success"),
            ("auth.networks-set", "success"),
            ("ingest.upload", "success"),
            ("dicomweb.search", "success"),
            ("dicomweb.retrieve", "success"),
            ("api.catalogue", "success"),
        }

        async def recorded() -> set[tuple[str, str]]:
            response = await client.get(
                "/api/projects/spine/audit", params={"limit": 1000}, headers=ana
            )
            return {(r["action"], r["outcome"]) for r in response.json()}

        try:
            await wait_until(lambda: _covers(recorded(), expected), "every access recorded")
        except AssertionError:
            raise AssertionError(f"missing: {expected - await recorded()}") from None
        trail = (
            await client.get("/api/projects/spine/audit", params={"limit": 1000}, headers=ana)
        ).json()
        upload = next(r for r in trail if r["action"] == "ingest.upload")
        assert upload["actor"] == f"key {key['id']} of ana" and upload["address"] == "192.0.2.10"
        retrieve = next(r for r in trail if r["action"] == "dicomweb.retrieve")
        assert study_uid in retrieve["target"]

        # filters, paging, CSV
        only = await client.get(
            "/api/projects/spine/audit", params={"action": "dicomweb.", "limit": 1}, headers=ana
        )
        assert len(only.json()) == 1 and only.json()[0]["action"].startswith("dicomweb.")
        exported = await client.get(
            "/api/projects/spine/audit", params={"format": "csv", "limit": 1000}, headers=ana
        )
        assert exported.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert {r["action"] for r in rows} >= {a for a, _ in expected}
        # members do not read the trail; their refusal is in it
        assert (await client.get("/api/projects/spine/audit", headers=moe)).status_code == 403

        async def refusal_recorded() -> bool:
            denied = await client.get(
                "/api/projects/spine/audit", params={"outcome": "denied"}, headers=ana
            )
            return any(r["actor"] == "moe" for r in denied.json())

        await wait_until(refusal_recorded, "moe's refusal in the trail")

        # sign-ins name no project: they are in the site's trail, for admins
        admin = await s.token()

        async def signed_in_recorded() -> bool:
            site_trail = await client.get(
                "/api/audit", params={"project": "", "actor": "ana", "limit": 1000}, headers=admin
            )
            return {(r["action"], r["outcome"]) for r in site_trail.json()} >= {
                ("auth.sign-in", "success"),
                ("auth.sign-in", "failure"),
                ("auth.refresh", "success"),
                ("auth.sign-out", "success"),
            }

        await wait_until(signed_in_recorded, "ana's sign-ins in the site's trail")
        assert (await client.get("/api/audit", headers=ana)).status_code == 403

    async with s.runtime.db.session() as session:
        with pytest.raises(Exception, match="append-only"):
            await session.exec(text("DELETE FROM api.audit"))  # type: ignore[call-overload]


async def _covers(found: object, expected: set[tuple[str, str]]) -> bool:
    return expected <= await found  # type: ignore[misc, operator]


async def test_security_headers_cors_docs_and_metrics(stack: Stack) -> None:
    async with site(stack.settings(), with_ingest=False) as s, s.client() as client:
        api = await client.get("/healthz")
        assert api.headers["x-content-type-options"] == "nosniff"
        assert api.headers["referrer-policy"] == "no-referrer"
        assert api.headers["x-frame-options"] == "DENY"
        assert api.headers["content-security-policy"].startswith("default-src 'none'")
        assert "strict-transport-security" not in api.headers  # plain HTTP
        assert (
            "access-control-allow-origin"
            not in (
                await client.get("/healthz", headers={"Origin": "https://evil.example"})
            ).headers
        )
        page = await client.get("/signin")  # a page of the web interface
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert page.headers["referrer-policy"] == "no-referrer"
        token = await client.post("/auth/token", data={"username": "x", "password": "y"})
        assert token.headers["cache-control"] == "no-store"
        # behind a trusted proxy that speaks TLS: HSTS; from an untrusted peer the header is ignored
        assert (
            "strict-transport-security"
            not in (await client.get("/healthz", headers={"X-Forwarded-Proto": "https"})).headers
        )

    settings = stack.settings(
        network={"trusted_proxies": ["127.0.0.1/32"]},
        http={"cors_origins": ["https://viewer.example.org"], "docs": False},
        metrics={"token": "scrape-me"},
    )
    async with site(settings, with_ingest=False) as s, s.client() as client:
        tls = await client.get("/healthz", headers={"X-Forwarded-Proto": "https"})
        assert tls.headers["strict-transport-security"].startswith("max-age=")
        allowed = await client.get("/healthz", headers={"Origin": "https://viewer.example.org"})
        assert allowed.headers["access-control-allow-origin"] == "https://viewer.example.org"
        other = await client.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        assert (await client.get("/docs")).status_code == 404
        assert (await client.get("/openapi.json")).status_code == 404
        assert (await client.get("/metrics")).status_code == 404
        scraped = await client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
        assert scraped.status_code == 200 and "giftcloud" in scraped.text


async def test_failed_sign_ins_are_forgotten_after_a_quiet_quarter_hour(hospital: Site) -> None:
    s = hospital
    admin = await s.token()
    await make_user(s, admin, "pia")
    async with s.client("203.0.113.80") as client:
        statuses = [
            (
                await client.post("/auth/token", data={"username": "pia", "password": "nope"})
            ).status_code
            for _ in range(6)
        ]
        assert statuses == [401] * 5 + [429]
        async with s.runtime.db.session() as session:
            await session.exec(  # type: ignore[call-overload]
                text("UPDATE auth.sign_in_failures SET last_failure_at = now() - interval '16 min'")
            )
        later = await client.post("/auth/token", data={"username": "pia", "password": "nope"})
        assert later.status_code == 401  # judged again, not made to wait
        async with s.runtime.db.session() as session:
            failures = (
                await session.exec(  # type: ignore[call-overload]
                    text("SELECT failures FROM auth.sign_in_failures WHERE key = 'user:pia'")
                )
            ).scalar()
        assert failures == 1


async def test_a_key_bound_to_networks_is_of_no_use_elsewhere(hospital: Site) -> None:
    s = hospital
    admin = await s.token()
    await make_project(s, admin, "hip")
    async with s.client() as client:
        key = await client.post(
            "/auth/projects/hip/keys",
            json={"name": "lab", "role": "collaborator", "networks": ["10.7.0.0/16"]},
            headers=admin,
        )
    bound = {"Authorization": f"Bearer {key.json()['key']}"}
    async with s.client("10.7.1.1") as inside, s.client("10.8.1.1") as outside:
        assert (await inside.get("/api/projects", headers=bound)).status_code == 200
        refused = await outside.get("/api/projects", headers=bound)
        assert refused.status_code == 403 and "10.7.0.0/16" in refused.json()["detail"]

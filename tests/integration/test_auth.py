import asyncio
import stat
from pathlib import Path

import httpx
import pytest
from giftcloud_auth.app import build
from giftcloud_core.app import Runtime
from giftcloud_core.events import ProjectCreated, ProjectUpdated
from giftcloud_core.tokens import HttpJwks, TokenVerifier
from integration.conftest import next_message, running
from support.infra import rabbitmq_start, rabbitmq_stop
from support.stack import Stack


async def token(client: httpx.AsyncClient, user: str, password: str) -> str:
    response = await client.post("/auth/token", data={"username": user, "password": password})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def test_admin_projects_members_and_tokens(stack: Stack) -> None:
    runtime = Runtime(stack.settings())
    part, _ = build(runtime)
    async with running(runtime, [part]) as client:
        admin = {"Authorization": f"Bearer {await token(client, 'admin', 'admin-test-password')}"}
        assert (
            await client.post("/auth/token", data={"username": "admin", "password": "wrong"})
        ).status_code == 401
        assert (
            await client.post("/auth/token", data={"username": "nobody", "password": "x"})
        ).status_code == 401

        # other services verify tokens from the JWKS alone
        jwks = (await client.get("/auth/.well-known/jwks.json")).json()
        assert jwks["keys"][0]["kty"] == "RSA" and "d" not in jwks["keys"][0]

        keys = HttpJwks("/auth/.well-known/jwks.json", client=client)
        principal = await TokenVerifier(keys, "giftcloud", "giftcloud").verify(
            admin["Authorization"][7:]
        )
        assert principal.is_admin

        response = await client.post(
            "/auth/projects", json={"name": "brain-mri", "title": "Brain"}, headers=admin
        )
        assert response.status_code == 201, response.text
        assert (
            await client.post("/auth/projects", json={"name": "brain-mri"}, headers=admin)
        ).status_code == 409
        assert (
            await client.post("/auth/projects", json={"name": "Bad Name!"}, headers=admin)
        ).status_code == 422
        announced = await next_message(stack, "ingest.projects")
        assert isinstance(announced, ProjectCreated) and announced.project == "brain-mri"

        created = await client.post(
            "/auth/users",
            json={"username": "bob", "password": "bob rides a blue bicycle"},
            headers=admin,
        )
        assert created.status_code == 201
        bob = {"Authorization": f"Bearer {await token(client, 'bob', 'bob rides a blue bicycle')}"}
        assert (
            await client.post(
                "/auth/users",
                json={"username": "eve", "password": "eve rides a blue bicycle"},
                headers=bob,
            )
        ).status_code == 403
        assert (await client.get("/auth/projects", headers=bob)).json() == []
        assert (
            await client.put(
                "/auth/projects/brain-mri/members",
                json={"username": "bob", "role": "member"},
                headers=bob,
            )
        ).status_code == 403
        assert (
            await client.put(
                "/auth/projects/brain-mri/members",
                json={"username": "bob", "role": "member"},
                headers=admin,
            )
        ).status_code == 204
        assert (
            await client.put(
                "/auth/projects/nope/members",
                json={"username": "bob", "role": "member"},
                headers=admin,
            )
        ).status_code == 404

        bob = {"Authorization": f"Bearer {await token(client, 'bob', 'bob rides a blue bicycle')}"}
        assert (await client.get("/auth/projects", headers=bob)).json() == [
            {"name": "brain-mri", "title": "Brain", "role": "member"}
        ]
        assert (await client.get("/auth/projects")).status_code == 401

    # a restart keeps the signing key and does not make a second admin
    runtime = Runtime(stack.settings(admin_password="another-password"))
    part, service = build(runtime)
    async with running(runtime, [part]) as client:
        assert (await client.get("/auth/.well-known/jwks.json")).json() == jwks
        await token(client, "admin", "admin-test-password")


async def test_a_project_created_while_the_broker_is_away_is_announced_when_it_is_back(
    stack: Stack,
) -> None:
    runtime = Runtime(stack.settings(auth={"outbox_interval_seconds": 0.2}))
    part, service = build(runtime)
    async with running(runtime, [part]) as client:
        admin = {"Authorization": f"Bearer {await token(client, 'admin', 'admin-test-password')}"}
        await asyncio.to_thread(rabbitmq_stop)
        try:
            response = await client.post("/auth/projects", json={"name": "later"}, headers=admin)
            assert response.status_code == 201, response.text  # committed, its event kept
            assert await service.journal.relay() == 0
        finally:
            await asyncio.to_thread(rabbitmq_start)
        # the bus reconnects, and the relay's next round publishes it
        announced = await next_message(stack, "ingest.projects", timeout=30)
        assert isinstance(announced, ProjectCreated) and announced.project == "later"
        state = await next_message(stack, "ingest.projects", timeout=30)
        assert isinstance(state, ProjectUpdated) and state.project == "later"
        await asyncio.sleep(0.5)  # a few more rounds: it went once, and the outbox is empty
        assert await service.journal.relay() == 0
        with pytest.raises(AssertionError, match="no message"):
            await next_message(stack, "ingest.projects", timeout=1)


async def test_projects_are_made_by_admins_and_creators_only_within_limits(stack: Stack) -> None:
    runtime = Runtime(stack.settings())
    part, _ = build(runtime)
    async with running(runtime, [part]) as client:
        admin = {"Authorization": f"Bearer {await token(client, 'admin', 'admin-test-password')}"}
        for name, roles in (("carl", []), ("cora", ["creator"])):
            response = await client.post(
                "/auth/users",
                json={
                    "username": name,
                    "password": f"{name} rides a blue bicycle",
                    "site_roles": roles,
                },
                headers=admin,
            )
            assert response.status_code == 201, response.text
        carl = {
            "Authorization": f"Bearer {await token(client, 'carl', 'carl rides a blue bicycle')}"
        }
        cora = {
            "Authorization": f"Bearer {await token(client, 'cora', 'cora rides a blue bicycle')}"
        }
        refused = await client.post("/auth/projects", json={"name": "carls"}, headers=carl)
        assert refused.status_code == 403 and "creator" in refused.json()["detail"]
        made = await client.post("/auth/projects", json={"name": "coras"}, headers=cora)
        assert made.status_code == 201 and made.json()["role"] == "owner"
        for too_long, status in (
            ({"name": "x" * 64}, 422),
            ({"name": "long-title", "title": "t" * 201}, 422),
            ({"name": "big-title", "title": "t" * 5_000_000}, 413),  # auth takes 64 KiB at most
        ):
            response = await client.post("/auth/projects", json=too_long, headers=admin)
            assert response.status_code == status
            assert "t" * 200 not in response.text  # what was sent is not echoed back

        # an owner learns nothing of which accounts exist from adding members
        cora = {
            "Authorization": f"Bearer {await token(client, 'cora', 'cora rides a blue bicycle')}"
        }
        answers = []
        for username in ("carl", "no-such-account"):
            response = await client.put(
                "/auth/projects/coras/members",
                json={"username": username, "role": "member"},
                headers=cora,
            )
            answers.append((response.status_code, response.content))
        assert answers[0] == answers[1] == (204, b"")


async def test_usernames_are_case_insensitive_and_passwords_never_echoed(stack: Stack) -> None:
    runtime = Runtime(stack.settings())
    part, _ = build(runtime)
    async with running(runtime, [part]) as client:
        await token(client, "ADMIN", "admin-test-password")
        await token(client, "Admin", "admin-test-password")
        admin = {"Authorization": f"Bearer {await token(client, 'admin', 'admin-test-password')}"}
        twin = await client.post(
            "/auth/users",
            json={"username": "Admin", "password": "twin rides a blue bicycle"},
            headers=admin,
        )
        assert twin.status_code == 409
        made = await client.post(
            "/auth/users",
            json={"username": "Dora", "password": "dora rides a blue bicycle"},
            headers=admin,
        )
        assert made.json()["username"] == "dora"
        await token(client, "DORA", "dora rides a blue bicycle")
        short = await client.post(
            "/auth/users", json={"username": "ed", "password": "sh0rt!"}, headers=admin
        )
        assert short.status_code == 400 and "sh0rt!" not in short.text
        assert "at least 12 characters" in short.json()["detail"]


async def test_a_generated_admin_password_goes_to_a_private_file_not_the_log(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runtime = Runtime(stack.settings(data_dir=tmp_path / "data"))
    runtime.settings.admin_password = None
    part, _ = build(runtime)
    async with running(runtime, [part]) as client:
        path = tmp_path / "data" / "admin-password"
        password = path.read_text().strip()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        await token(client, "admin", password)
    printed = capsys.readouterr()
    assert password not in printed.out + printed.err
    assert str(path) in printed.out

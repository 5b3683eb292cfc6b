"""Each service in process (its real app, lifespan and consumers) on real PostgreSQL,
RabbitMQ and S3; tokens signed by a real key the test holds."""

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aio_pika
import httpx
import pytest
from giftcloud_core.app import Runtime, ServicePart, create_app
from giftcloud_core.events import Event, parse_event
from giftcloud_core.storage import ObjectStore, S3ObjectStore
from giftcloud_core.tokens import SignerJwks, TokenSigner, TokenVerifier, generate_private_key_pem
from support.infra import AMQP
from support.stack import Stack

PEM = generate_private_key_pem()


@pytest.fixture
def signer() -> TokenSigner:
    return TokenSigner(PEM, "giftcloud", "giftcloud")


@pytest.fixture
def bearer(signer: TokenSigner) -> Callable[..., dict[str, str]]:
    def make(
        user: str = "alice", projects: dict[str, str] | None = None, roles: list[str] | None = None
    ) -> dict[str, str]:
        token = signer.sign(
            user, site_roles=roles or [], projects=projects or {}, lifetime_seconds=300
        )
        return {"Authorization": f"Bearer {token}"}

    return make


@pytest.fixture
def runtime(stack: Stack, signer: TokenSigner) -> Runtime:
    verifier = TokenVerifier(SignerJwks(lambda: signer), "giftcloud", "giftcloud")
    return Runtime(stack.settings(), verifier=verifier)


@asynccontextmanager
async def running(runtime: Runtime, parts: list[ServicePart]) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(runtime, parts, title="test")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


def raw_store(stack: Stack) -> ObjectStore:
    """The S3 store without decryption: what lies at rest."""
    return S3ObjectStore(stack.settings().storage)


async def next_message(stack: Stack, queue: str, timeout: float = 20) -> Event:
    """Take one message from a consumer queue that no service in the test consumes."""
    connection = await aio_pika.connect(AMQP)
    async with connection:
        channel = await connection.channel()
        q = await channel.get_queue(f"{stack.namespace}{queue}", ensure=False)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            message = await q.get(fail=False, no_ack=True)
            if message is not None:
                return parse_event(message.body)
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no message on {queue} within {timeout}s")
            await asyncio.sleep(0.1)


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = 30, what: str = "condition"
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        await asyncio.sleep(0.1)


async def settled(
    client: httpx.AsyncClient, project: str, response: httpx.Response, who: dict[str, str]
) -> dict[str, Any]:
    """The status of the upload a STOW-RS answer names, once nothing of it is pending."""
    assert response.status_code == 200, response.text
    upload = response.headers["X-Giftcloud-Upload"]
    status: dict[str, Any] = {}

    async def done() -> bool:
        nonlocal status
        status = (await client.get(f"/ingest/{project}/uploads/{upload}", headers=who)).json()
        return status["pending"] == 0

    await eventually(done, what="the upload settles")
    return status


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()

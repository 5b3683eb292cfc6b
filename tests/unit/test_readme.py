"""The README and the getting-started page say the same thing, and the README's commands exist."""

import shlex

from giftcloud.cli import _parser
from giftcloud_api.routes import DICOMWEB_STEPS, FIRST_STEPS
from giftcloud_api.web import render, start_context
from support.readme import README, shell_blocks


def test_the_start_page_shows_the_quick_start_steps() -> None:
    assert FIRST_STEPS in README
    for line in DICOMWEB_STEPS.splitlines():
        assert line in README, line
    page = render("start.html", **start_context(["api"], "http://127.0.0.1:8000"))
    assert "scripts/giftcloud project create demo" in page
    assert "GIFTCLOUD_URL" not in page
    elsewhere = render("start.html", **start_context(["api"], "http://127.0.0.1:8123"))
    assert "export GIFTCLOUD_URL=http://127.0.0.1:8123" in elsewhere
    assert "http://127.0.0.1:8123/dicomweb/demo/studies" in elsewhere


def test_every_giftcloud_command_in_the_readme_parses() -> None:
    """Each ``giftcloud ...`` command the README's shell blocks show is one the command
    accepts, options and all (a synopsis with ``...`` aside)."""
    parser = _parser()
    commands = [
        line.split("giftcloud ", 1)[1]
        for block in shell_blocks()
        for line in block
        if "giftcloud " in line
        and not line.startswith(("git ", "#", "TOKEN="))
        and "..." not in line
    ]
    for command in commands:
        words = shlex.split(command)
        parser.parse_args(words)
    assert len(commands) >= 7, commands

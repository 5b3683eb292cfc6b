"""The README and the getting-started page say the same thing, and the README's commands exist."""

import re
import shlex

from giftcloud.cli import _parser
from giftcloud_api.web.views import DICOMWEB_STEPS, FIRST_STEPS, render, start_context
from support.infra import ROOT
from support.readme import DOCUMENTS, README, section, shell_blocks


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


def test_every_giftcloud_command_in_the_readme_and_the_guide_parses() -> None:
    """Each ``giftcloud ...`` command the README's and the guide's shell blocks show is one
    the command accepts, options and all (a synopsis with ``...`` aside)."""
    parser = _parser()
    commands = [
        line.split("giftcloud ", 1)[1]
        for text in DOCUMENTS.values()
        for block in shell_blocks(text)
        for line in block
        if "giftcloud " in line
        and not line.startswith(("git ", "#", "TOKEN="))
        and "..." not in line
    ]
    for command in commands:
        words = shlex.split(command)
        # the shell's part of the line: a redirection, running it in the background
        ends = [n for n, word in enumerate(words) if word in ("&", ">", "|", "&&")]
        parser.parse_args(words[: ends[0]] if ends else words)
    assert len(commands) >= 10, commands


def test_the_quick_start_ends_in_the_browser() -> None:
    quick = section("Quick start").split("\n### ")[0]
    blocks = [b for b in shell_blocks() if b and all(line in quick for line in b)]
    assert blocks[-1] == ["open http://127.0.0.1:8000"], blocks[-1]
    assert quick.rstrip().endswith("(docs/project-page.png)"), quick[-300:]


def test_every_picture_the_readme_shows_is_in_the_repository() -> None:
    pictures = re.findall(r"!\[[^]]*\]\(([^)]+)\)", README)
    assert pictures, "no pictures"
    for path in pictures:
        assert (ROOT / path).is_file(), path

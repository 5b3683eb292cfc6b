"""The command line meets a newcomer's mistakes with one line and a way on, never a
traceback or an argparse error: the command alone, a typo, a file where a folder belongs,
``--url`` on login, an unknown subject."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import httpx
import pytest
from giftcloud import commands
from giftcloud.cli import main
from giftcloud.session import TROUBLE


def test_the_command_alone_shows_what_it_can_do(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == TROUBLE
    shown = capsys.readouterr()
    assert shown.out.startswith("usage: giftcloud")
    assert "send" in shown.out and "error" not in shown.err


@pytest.mark.parametrize(
    ("typed", "meant"), [("sned", "send"), ("upp", "up"), ("downlaod", "download")]
)
def test_a_typo_is_answered_with_the_nearest_commands(
    typed: str, meant: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([typed, "x"]) == TROUBLE
    said = capsys.readouterr().err.strip()
    assert said.startswith(f"giftcloud: no command {typed!r}: did you mean {meant}"), said
    assert len(said.splitlines()) == 1


def test_a_word_that_is_nothing_like_a_command_says_where_the_list_is(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["zzzzzz"]) == TROUBLE
    assert capsys.readouterr().err.strip() == (
        "giftcloud: no command 'zzzzzz': (giftcloud --help lists them)"
    )


def test_download_into_a_file_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "study.zip"
    target.write_bytes(b"")
    assert main(["download", "demo", str(target)]) == TROUBLE
    said = capsys.readouterr().err.strip()
    assert said == f"giftcloud: {target} is a file: download into a folder (it is made if missing)"


def test_login_takes_url_as_every_command_does(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GIFTCLOUD_PASSWORD", "pw")
    reached: list[str] = []

    def sign_in(url: str, username: str, password: str) -> dict[str, object]:
        reached.append(url)
        return {"username": username}

    monkeypatch.setattr(commands, "sign_in", sign_in)
    monkeypatch.setattr(commands.Credentials, "put", lambda self, url, entry: None)
    assert main(["login", "--url", "http://127.0.0.1:8123", "--username", "ann"]) == 0
    assert reached == ["http://127.0.0.1:8123"]


def test_ls_of_an_unknown_subject_is_an_error_not_an_empty_table(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Session:
        def get(self, path: str, what: str) -> httpx.Response:
            return httpx.Response(200, json=[])

    monkeypatch.setattr(commands, "session_for", lambda args: Session())
    assert main(["ls", "demo", "SUBJ-NOBODY"]) == TROUBLE
    said = capsys.readouterr()
    assert said.out == ""
    assert said.err.strip() == (
        "giftcloud: no subject 'SUBJ-NOBODY' in demo (giftcloud ls demo lists its subjects)"
    )


def test_a_second_up_on_the_same_folder_says_giftcloud_runs_there(tmp_path: Path) -> None:
    from giftcloud.server import hold_folder
    from giftcloud.session import CommandError

    first = hold_folder(tmp_path, "http://127.0.0.1:8000")
    try:
        with pytest.raises(CommandError) as second:
            hold_folder(tmp_path, "http://127.0.0.1:8001")
        assert second.value.message == (
            f"giftcloud already runs on {tmp_path} (pid {os.getpid()}, serving"
            " http://127.0.0.1:8000): use it, stop it (Ctrl-C where it runs), or give this one"
            " another --data-dir"
        )
    finally:
        first.close()
    hold_folder(tmp_path, "http://127.0.0.1:8001").close()  # free once the first has gone


def complete(*words: str) -> list[str]:
    """What bash offers after ``giftcloud WORDS`` (the last word being typed), with the
    script ``giftcloud completion`` prints loaded."""
    import shutil
    import subprocess

    from giftcloud.cli import _parser
    from giftcloud.completion import script

    if shutil.which("bash") is None:
        pytest.skip("no bash")
    typed = " ".join(shlex.quote(w) for w in ("giftcloud", *words))
    program = (
        f"{script(_parser())}\nCOMP_WORDS=({typed}); COMP_CWORD={len(words)}; _giftcloud;"
        ' printf "%s\\n" "${COMPREPLY[@]}"'
    )
    done = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True)
    return [line for line in done.stdout.splitlines() if line]


def test_bash_completes_commands_subcommands_and_options() -> None:
    assert complete("qua") == ["quarantine"]
    assert complete("u") == ["up", "uploads", "user"]
    assert complete("member", "") == ["add", "ls", "remove"]
    assert complete("member", "add", "--r") == ["--role"]
    assert complete("send", "--proj") == ["--project"]
    assert "--release" in complete("quarantine", "--")
    assert complete("send", "some/fol") == []  # paths: bash's own completion

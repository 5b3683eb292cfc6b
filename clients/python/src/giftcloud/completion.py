"""``giftcloud completion``: a bash completion script made from the command's own parser, so
it names every command, subcommand and option there is (in zsh: ``autoload bashcompinit &&
bashcompinit`` first).

    eval "$(giftcloud completion)"        # this shell; put it in ~/.bashrc to keep it
"""

from __future__ import annotations

import argparse
import shlex


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return {
        name: sub
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for name, sub in action.choices.items()
    }


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return sorted(o for a in parser._actions for o in a.option_strings if o.startswith("--"))


def script(parser: argparse.ArgumentParser) -> str:
    """The bash script: a case for each command (and each subcommand of a group)."""
    commands = _subcommands(parser)
    cases = []
    for name, sub in sorted(commands.items()):
        nested = _subcommands(sub)
        if nested:
            inner = "\n".join(
                f"        {shlex.quote(n)}) opts={shlex.quote(' '.join(_options(s)))} ;;"
                for n, s in sorted(nested.items())
            )
            cases.append(
                f"    {shlex.quote(name)})\n"
                f"      if [ $COMP_CWORD -eq 2 ]; then words={shlex.quote(' '.join(sorted(nested)))}; fi\n"
                f'      case "${{COMP_WORDS[2]}}" in\n{inner}\n      esac ;;'
            )
        else:
            cases.append(f"    {shlex.quote(name)}) opts={shlex.quote(' '.join(_options(sub)))} ;;")
    body = "\n".join(cases)
    return f"""# giftcloud's bash completion (giftcloud completion): eval "$(giftcloud completion)"
_giftcloud() {{
  local current="${{COMP_WORDS[COMP_CWORD]}}" words="" opts=""
  if [ $COMP_CWORD -eq 1 ]; then
    words={shlex.quote(" ".join(sorted(commands)))}
    opts="--help --version"
  else
    case "${{COMP_WORDS[1]}}" in
{body}
    esac
  fi
  if [[ "$current" == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$current"))
  elif [ -n "$words" ]; then
    COMPREPLY=($(compgen -W "$words" -- "$current"))
  else
    COMPREPLY=()  # files and folders: bash's own (-o default)
  fi
}}
complete -o default -F _giftcloud giftcloud
"""


def completion(args: argparse.Namespace) -> int:
    from giftcloud.cli import _parser

    print(script(_parser()), end="")
    return 0

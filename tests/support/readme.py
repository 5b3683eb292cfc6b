"""The README's shell blocks, as the commands a reader would type."""

from support.infra import ROOT

README = (ROOT / "README.md").read_text()


def shell_blocks() -> list[list[str]]:
    """Each ```sh block's commands: continuation lines joined, trailing comments cut."""
    blocks: list[list[str]] = []
    inside, pending = False, ""
    for raw in README.splitlines():
        if raw.startswith("```"):
            inside = raw.strip() == "```sh"
            if inside:
                blocks.append([])
            continue
        if not inside:
            continue
        text = raw.split("  #")[0].rstrip()
        if text.endswith("\\"):
            pending += text[:-1] + " "
            continue
        line = (pending + text).strip()
        pending = ""
        if line and not line.startswith("#"):
            blocks[-1].append(line)
    return blocks


def section(title: str) -> str:
    """The text of a ``## title`` section."""
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]

"""The README's shell blocks, as the commands a reader would type."""

from support.infra import ROOT

README = (ROOT / "README.md").read_text()
#: the README and the guide's pages (docs/), each by its name
DOCUMENTS = {"README.md": README} | {
    f"docs/{path.name}": path.read_text() for path in sorted((ROOT / "docs").glob("*.md"))
}


def shell_blocks(text: str = README) -> list[list[str]]:
    """Each ```sh block's commands: continuation lines joined, trailing comments cut."""
    blocks: list[list[str]] = []
    inside, pending = False, ""
    for raw in text.splitlines():
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

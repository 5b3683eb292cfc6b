"""One way to render HTML in giftcloud: Jinja, autoescaped, every page on one base
(``templates/base.html`` here: the bar, the stylesheet the api serves at /static). A
service's own templates come first, then the base."""

from pathlib import Path

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

BASE = Path(__file__).parent / "templates"


def environment(templates: Path) -> Environment:
    """The Jinja environment of a service whose pages are in ``templates``. ``asset(name)``
    is where a page finds a stylesheet or script the api serves (the api's own pages add
    the files' version to it, so a browser never mixes an old file with a new one)."""
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader(templates), FileSystemLoader(BASE)]),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["asset"] = lambda name: f"/static/{name}"
    return env

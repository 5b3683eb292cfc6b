"""How the pages show things: sizes, dates, who is looking (a Viewer), the Jinja
environment every page is rendered with, the getting-started text."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

from giftcloud_core.errors import BadRequest
from giftcloud_core.gates import STEWARD, reviews_results
from giftcloud_core.html import environment as pages_environment
from giftcloud_core.names import PROJECT_NAME_HTML, PROJECT_NAME_MAX, PROJECT_NAME_RULE
from giftcloud_core.tokens import WRITE_ROLES, Principal
from jinja2 import Environment

HERE = Path(__file__).parent.parent


STATIC = HERE / "static"


PAGE_SIZE = 50


MODALITY = re.compile(r"[A-Z0-9]{1,16}")


UID_PATTERN = re.compile(r"[0-9.]{1,64}")


#: what the sign-in page says for each reason auth sends a browser back
STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".txt": "text/plain"}


def human_size(size: int) -> str:
    """``1234567`` → ``1.2 MB`` (decimal units, as browsers and file managers show them)."""
    if size < 1000:
        return f"{size} bytes"
    value = float(size)
    for unit in ("KB", "MB", "GB"):
        value /= 1000
        if value < 1000:
            return f"{value:.1f} {unit}"
    return f"{value / 1000:.1f} TB"


def dicom_date(text: str) -> str:
    """``20240131`` → ``2024-01-31`` (as it came when it is not a date)."""
    if re.fullmatch(r"\d{8}", text):
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return text


def date_param(text: str) -> str:
    """A date from the page's filter (``YYYY-MM-DD``) as DICOM writes it; '' for none."""
    if not text:
        return ""
    try:
        return date.fromisoformat(text[:10]).strftime("%Y%m%d")
    except ValueError:
        raise BadRequest(f"{text[:20]!r} is not a date (YYYY-MM-DD)") from None


class GoTo(Exception):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


@dataclass(frozen=True)
class Viewer:
    """Who looks at a page, and what they may do."""

    principal: Principal

    @property
    def name(self) -> str:
        return self.principal.name

    @property
    def is_admin(self) -> bool:
        return self.principal.is_admin

    @property
    def is_steward(self) -> bool:
        """This site's data steward: releases or withholds what its federated jobs give."""
        return STEWARD in self.principal.site_roles

    @property
    def may_create(self) -> bool:
        return self.principal.may_create_projects

    def role(self, project: str) -> str | None:
        return self.principal.role_on(project)

    def may_write(self, project: str) -> bool:
        return self.principal.role_on(project) in WRITE_ROLES

    def owns(self, project: str) -> bool:
        return self.principal.role_on(project) == "owner"

    def reviews(self, project: str) -> bool:
        """Whether they review the results that come back from the hub."""
        return reviews_results(self.principal, project)


def static_version(folder: Path) -> str:
    """A digest of every file the pages load: in their URLs, so that after an upgrade a
    browser fetches the new ones rather than mixing them with cached old ones."""
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


STATIC_VERSION = static_version(STATIC)


def environment() -> Environment:
    env = pages_environment(HERE / "templates")
    env.globals["asset"] = lambda name: f"/static/{name}?v={STATIC_VERSION}"
    env.filters["size"] = human_size
    env.filters["dicom_date"] = dicom_date
    env.filters["q"] = lambda value: quote(str(value), safe="")
    return env


ENV = environment()

#: the pages' Content Security Policy: stricter than the services' default, no inline
#: style either
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self';"
    " script-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none';"
    " form-action 'self'"
)


def start_context(services: list[str], base_url: str) -> dict[str, Any]:
    """What the getting-started page shows: the README's first steps, on this server."""
    return {
        "services": services,
        "first_steps": FIRST_STEPS,
        "dicomweb": DICOMWEB_STEPS.replace("http://127.0.0.1:8000", base_url),
        "elsewhere": "" if base_url == "http://127.0.0.1:8000" else base_url,
    }


def render(template: str, **context: Any) -> str:
    context.setdefault("project_name_pattern", PROJECT_NAME_HTML)
    context.setdefault("project_name_max", PROJECT_NAME_MAX)
    context.setdefault("project_name_rule", PROJECT_NAME_RULE)
    context.setdefault("viewer", None)
    context.setdefault("csrf", "")
    context.setdefault("here", "/")
    return ENV.get_template(template).render(**context)


#: the first steps, as the README's Quick start says them (a test keeps the two in step)
FIRST_STEPS = """scripts/giftcloud login --username admin                # asks for the password; kept per server
scripts/giftcloud project create demo
scripts/giftcloud send --project demo path/to/dicom/    # files, folders, zip files, DICOMDIR media
scripts/giftcloud ls demo                               # subjects; ls demo SUBJECT: their studies
scripts/giftcloud download demo fetched/                # fetched/subject/study/series/sop.dcm"""


DICOMWEB_STEPS = """TOKEN=$(scripts/giftcloud token)
curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8000/dicomweb/demo/studies"""

"""auth's pages (a link's form, its outcome, a failed single sign-on), rendered as every
giftcloud page is: Jinja on the common base (giftcloud_core.html)."""

from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from giftcloud_core.html import environment

ENV = environment(Path(__file__).parent / "templates")


def page(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(ENV.get_template(template).render(**context), status_code=status_code)

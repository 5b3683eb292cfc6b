"""Names that cross service boundaries and end up in keys, queues and URLs."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

#: a project's name: lower-case letters, digits and '-', 2 to 63 characters
PROJECT_NAME = r"^[a-z0-9][a-z0-9-]{1,62}$"
#: the same rule as an HTML input's ``pattern`` (anchored by the browser, which reads it
#: with the ``v`` flag: a '-' in a class is escaped) and its length
PROJECT_NAME_HTML = PROJECT_NAME[1:-1].replace("-]", "\\-]")
PROJECT_NAME_MAX = 63
_PROJECT = re.compile(PROJECT_NAME)


#: the rule in words, for messages and a form's title
PROJECT_NAME_RULE = "lower-case letters, digits and '-', 2 to 63 characters, not starting with '-'"


def is_project_name(name: str) -> bool:
    return _PROJECT.fullmatch(name) is not None


def check_project_name(name: str) -> str:
    """``name`` itself when it is a valid project name; :class:`ValueError` otherwise."""
    if not _PROJECT.fullmatch(name):
        raise ValueError(f"project name {name[:80]!r} is not valid: {PROJECT_NAME_RULE}")
    return name


#: a project's name in an API's body: the rule's words in a refusal, not a regular expression
ProjectName = Annotated[str, AfterValidator(check_project_name)]

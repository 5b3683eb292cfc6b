"""A project's name has one rule: the API's, the pages' form and the audit's file name."""

import re

import pytest
from giftcloud_core.names import (
    PROJECT_NAME_HTML,
    PROJECT_NAME_MAX,
    check_project_name,
    is_project_name,
)

NAMES = ["ab", "a1", "brain-mri", "x" * 63, "a", "x" * 64, "-ab", "Ab", "a_b", "a b", "a-"]


@pytest.mark.parametrize("name", NAMES)
def test_the_form_takes_what_the_api_takes(name: str) -> None:
    by_form = re.fullmatch(PROJECT_NAME_HTML, name) is not None and len(name) <= PROJECT_NAME_MAX
    assert by_form == is_project_name(name)
    if is_project_name(name):
        assert check_project_name(name) == name
    else:
        with pytest.raises(ValueError, match="2 to 63 characters"):
            check_project_name(name)

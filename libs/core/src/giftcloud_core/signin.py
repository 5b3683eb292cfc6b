"""Why a browser's sign-in failed, as auth's sign-in form says it to the sign-in page: a
code in the link (never text: a link cannot make the page say what it likes), and what
the page says for each code."""

from __future__ import annotations

from typing import Literal

SignInFailure = Literal["credentials", "disabled", "locked", "throttled", "expired"]

SIGN_IN_FAILURES: dict[str, str] = {
    "credentials": "Wrong username or password.",
    "disabled": "This account is disabled: ask an admin.",
    "locked": "Too many failed sign-ins: this account is locked for a while; an admin can"
    " unlock it.",
    "throttled": "Too many failed sign-ins: wait a minute before trying again.",
    "expired": "The sign-in form had expired: try again.",
}


def failure_message(code: str) -> str:
    """What the sign-in page says for a failure code ('' when there was none)."""
    return SIGN_IN_FAILURES.get(code, "Sign-in failed.") if code else ""

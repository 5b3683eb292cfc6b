"""UIDs as PS3.5 §9.1 defines them: at most 64 characters, digits and dots, components
neither empty nor zero-padded. UIDs become storage keys and URL paths, so every way in
checks them before anything is built from them."""

from __future__ import annotations

MAX_LENGTH = 64


def uid_problem(uid: str) -> str | None:
    """What makes ``uid`` invalid, or None when it is a valid UID."""
    if not uid:
        return "it is empty"
    if len(uid) > MAX_LENGTH:
        return f"it has {len(uid)} characters; at most {MAX_LENGTH} are allowed"
    for number, component in enumerate(uid.split("."), start=1):
        if not component:
            return f"component {number} is empty"
        if not (component.isascii() and component.isdigit()):
            return f"component {number} {component[:16]!r} is not only digits"
        if len(component) > 1 and component[0] == "0":
            return f"component {number} {component!r} starts with a zero"
    return None


def is_valid_uid(uid: str) -> bool:
    """True when ``uid`` is a valid UID (PS3.5 §9.1)."""
    return uid_problem(uid) is None


def check_uid(uid: str, name: str) -> str:
    """``uid`` itself when valid; :class:`ValueError` naming the attribute and the problem."""
    problem = uid_problem(uid)
    if problem is not None:
        raise ValueError(f"{name} {uid[:80]!r} is not a valid UID (PS3.5 §9.1): {problem}")
    return uid

"""The password policy, after NIST SP 800-63B §3.1.1.2: at least 12 characters, at most
1024, any characters, no composition rules; refused when it is a commonly used password
(or one with a few digits or symbols around it), a run of one character or a sequence,
or the account's own name or the service's."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

MIN_LENGTH = 12
MAX_LENGTH = 1024
_COMMON = Path(__file__).parent / "data" / "common_passwords.txt"
_SEQUENCES = (
    "0123456789012345678901234567890",
    "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz",
    "qwertyuiopasdfghjklzxcvbnmqwertyuiopasdfghjklzxcvbnm",
)


class WeakPassword(ValueError):
    """A password the policy refuses; the message says why, never the password."""


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The commonly used passwords shipped as data (lower-cased)."""
    lines = _COMMON.read_text().splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def check_password(password: str, *, username: str = "") -> str:
    """``password`` itself when the policy accepts it; :class:`WeakPassword` naming the rule."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"a password may have at most {MAX_LENGTH} characters")
    if "\x00" in password:
        raise WeakPassword("a password may not hold a NUL byte")
    folded = password.lower()
    common = common_passwords()
    core = re.sub(r"^[\W\d_]+|[\W\d_]+$", "", folded)  # 'Password123!' is 'password'
    if folded in common or (len(core) >= 4 and core in common):
        raise WeakPassword("this password is one of the most commonly used: choose another")
    if len(set(folded)) <= 2:
        raise WeakPassword("a password of one or two repeated characters is easily guessed")
    if any(folded in sequence or folded in sequence[::-1] for sequence in _SEQUENCES):
        raise WeakPassword("a run of consecutive characters is easily guessed")
    for word in (username.lower(), "giftcloud"):
        if len(word) >= 3 and word in folded and len(folded) - len(word) < MIN_LENGTH:
            raise WeakPassword("a password built on the account or service name is easily guessed")
    return password

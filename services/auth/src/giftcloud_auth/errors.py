"""auth's own refusals (each carries its HTTP status, like every giftcloud error)."""

from __future__ import annotations

from giftcloud_core.errors import Forbidden, GiftcloudError, TooManyRequests
from giftcloud_core.signin import SignInFailure


def failure_code(exc: GiftcloudError) -> SignInFailure:
    """The sign-in page's code for why a sign-in failed (giftcloud_core.signin)."""
    return getattr(exc, "code", "credentials")


class SignInRefused(GiftcloudError):
    """Wrong credentials: the same answer whether or not the account exists."""

    status = 401
    code: SignInFailure = "credentials"

    def __init__(self, message: str = "wrong username or password") -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class AccountDisabled(SignInRefused):
    """The right password for an account an admin has disabled."""

    code: SignInFailure = "disabled"

    def __init__(self) -> None:
        super().__init__("this account is disabled")


class SignInThrottled(TooManyRequests):
    code: SignInFailure = "throttled"

    def __init__(self, seconds: int, what: str) -> None:
        super().__init__(
            f"too many failed sign-ins for this {what}: wait {seconds} s before trying again",
            headers={"Retry-After": str(seconds)},
        )


class AccountLocked(Forbidden):
    code: SignInFailure = "locked"

    def __init__(self, until: str) -> None:
        super().__init__(
            f"too many failed sign-ins: this account is locked {until}; an admin can unlock it"
        )

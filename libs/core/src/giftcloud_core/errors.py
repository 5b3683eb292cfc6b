"""The exception tree: every error a service raises on purpose carries its HTTP status."""

from __future__ import annotations

from typing import Any


class GiftcloudError(Exception):
    """Base of giftcloud's own errors; ``status`` is the HTTP status it maps to."""

    status: int = 500

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers

    def body(self) -> dict[str, Any]:
        return {"detail": self.message}


class BadRequest(GiftcloudError):
    status = 400


class Unauthorized(GiftcloudError):
    status = 401

    def __init__(self, message: str = "a valid bearer token is required") -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(GiftcloudError):
    status = 403


class NotFound(GiftcloudError):
    status = 404


class NotAcceptable(GiftcloudError):
    status = 406


class RequestTimeout(GiftcloudError):
    status = 408


class Conflict(GiftcloudError):
    status = 409


class PayloadTooLarge(GiftcloudError):
    status = 413


class TooManyRequests(GiftcloudError):
    status = 429


class UnsupportedMediaType(GiftcloudError):
    status = 415


class ServiceUnavailable(GiftcloudError):
    status = 503


class ObjectNotFound(GiftcloudError):
    """An object store key that does not exist."""

    status = 404

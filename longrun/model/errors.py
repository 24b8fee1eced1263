"""The one exception tree of longrun; every error the API renders descends from LongrunError.

LongrunError
├── InvalidInput (400)          ├── IllegalTransition (409)
├── Unauthorized (401)          ├── IdempotencyMismatch (409)
├── Forbidden (403)             ├── Conflict (409)
├── NotFound (404)              ├── PayloadTooLarge (413)
├── MethodNotAllowed (405)      │
├── Gone (410)                  ├── RateLimited (429)
├── ConfigurationError          ├── StoreUnavailable (503)
├── WaitTimeout (408)           ├── InternalError (500)
├── LeaseLost                   └── OperationError (handler-chosen code)
└── RetryableError
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "ConfigurationError",
    "Conflict",
    "Forbidden",
    "Gone",
    "IdempotencyMismatch",
    "IllegalTransition",
    "InternalError",
    "InvalidInput",
    "LeaseLost",
    "LongrunError",
    "MethodNotAllowed",
    "NotFound",
    "OperationError",
    "PayloadTooLarge",
    "RateLimited",
    "RetryableError",
    "StoreUnavailable",
    "Unauthorized",
    "WaitTimeout",
    "error_class",
]


class LongrunError(Exception):
    """Something went wrong in longrun."""

    http_status: ClassVar[int] = 500

    def __init__(
        self,
        message: str | None = None,
        *,
        target: str | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        self.message = message or (type(self).__doc__ or type(self).__name__).strip()
        self.target = target
        self.details = details or []
        super().__init__(self.message)

    @property
    def code(self) -> str:
        """The machine-readable code: the class name."""
        return type(self).__name__

    def to_body(self) -> dict[str, Any]:
        """The one error shape of the wire: ``{"error": {code, message, target, details}}``."""
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "target": self.target,
                "details": self.details,
            }
        }


class InvalidInput(LongrunError):
    """The request is not valid."""

    http_status = 400


class Unauthorized(LongrunError):
    """Credentials are missing or not valid."""

    http_status = 401


class Forbidden(LongrunError):
    """The caller may not do this."""

    http_status = 403


class NotFound(LongrunError):
    """No such operation."""

    http_status = 404


class WaitTimeout(LongrunError):
    """The wait ended before the operation reached a terminal state."""

    http_status = 408


class MethodNotAllowed(LongrunError):
    """That method is not allowed on this resource."""

    http_status = 405


class Gone(LongrunError):
    """The operation existed but has been purged."""

    http_status = 410


class IllegalTransition(LongrunError):
    """The operation cannot make that transition from its current status."""

    http_status = 409


class IdempotencyMismatch(LongrunError):
    """The idempotency key was already used for a different request."""

    http_status = 409


class Conflict(LongrunError):
    """The request conflicts with another operation."""

    http_status = 409


class PayloadTooLarge(LongrunError):
    """The request body is too large."""

    http_status = 413


class RateLimited(LongrunError):
    """Too many requests; retry later."""

    http_status = 429


class InternalError(LongrunError):
    """An unexpected error happened in the server."""

    http_status = 500


class StoreUnavailable(LongrunError):
    """The store cannot be reached right now; retry later."""

    http_status = 503


class ConfigurationError(LongrunError):
    """longrun is not configured correctly."""

    http_status = 500


class LeaseLost(LongrunError):
    """This worker no longer owns the operation; its write was refused."""

    http_status = 409


class RetryableError(LongrunError):
    """The handler failed in a way that may succeed if tried again."""

    http_status = 500


class OperationError(LongrunError):
    """The operation failed."""

    http_status = 500

    def __init__(
        self,
        code: str,
        message: str,
        *,
        target: str | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message, target=target, details=details)
        self._code = code

    @property
    def code(self) -> str:
        return self._code


def _all_subclasses(cls: type[LongrunError]) -> list[type[LongrunError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_all_subclasses(sub))
    return found


def error_class(code: str) -> type[LongrunError] | None:
    """The error class whose code is ``code``, or None when the code is not one of ours."""
    for cls in _all_subclasses(LongrunError):
        if cls.__name__ == code and cls is not OperationError:
            return cls
    return None

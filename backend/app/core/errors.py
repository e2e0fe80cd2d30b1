"""Domain errors raised by crud and the rules; app.api.error_handlers maps each kind to one HTTP status."""

from typing import Any


class DomainError(Exception):
    """`detail` is the message for the client; `extra` adds fields to the error body."""

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(DomainError):
    """Absent, or not visible to the caller (who must not learn that it exists)."""


class Forbidden(DomainError):
    """The caller sees the resource but their role may not do this."""


class Conflict(DomainError):
    """The request clashes with the resource's state (a move the lifecycle forbids, a duplicate)."""


class StaleVersion(DomainError):
    """If-Match named an older version than the stored one."""


class Invalid(DomainError):
    """The body is well-formed but refers to something that does not exist or misses a field."""

    def __init__(self, field: str, message: str, kind: str = "value_error") -> None:
        super().__init__(message)
        self.field = field
        self.kind = kind


class Throttled(DomainError):
    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class BadCredentials(DomainError):
    """Login refused: the same answer for an unknown e-mail and a wrong password."""

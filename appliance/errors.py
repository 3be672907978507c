"""One exception hierarchy; the HTTP layer maps each class to a status and error code."""

from __future__ import annotations

from typing import Any


class DockmasterError(Exception):
    """Base class of every error Dockmaster raises on purpose."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        """Keep a user-facing message and optional structured details."""
        super().__init__(message)
        self.message = message
        self.details = details or {}


class ConfigError(DockmasterError):
    """The configuration cannot be loaded or validated."""

    status = 400
    code = "config_error"


class ValidationFailed(DockmasterError):
    """A request body or query did not match its schema."""

    status = 400
    code = "invalid_request"


class Unauthorized(DockmasterError):
    """No valid credentials were presented."""

    status = 401
    code = "unauthorized"


class Forbidden(DockmasterError):
    """Credentials are valid but do not allow this request."""

    status = 403
    code = "forbidden"


class NotFound(DockmasterError):
    """The named thing does not exist."""

    status = 404
    code = "not_found"


class Conflict(DockmasterError):
    """The target is busy or in a state that forbids the request."""

    status = 409
    code = "conflict"


class PayloadTooLarge(DockmasterError):
    """The request body is over the limit."""

    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(DockmasterError):
    """The request body has the wrong content type."""

    status = 415
    code = "unsupported_media_type"


class TooManyRequests(DockmasterError):
    """The caller is throttled."""

    status = 429
    code = "too_many_requests"


class Unavailable(DockmasterError):
    """A dependency (engine, remote, addon) is not available right now."""

    status = 503
    code = "unavailable"

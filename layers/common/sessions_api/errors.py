"""Domain errors. Each carries its RFC 9457 problem code, HTTP status and title; `http` renders them."""

from __future__ import annotations

from typing import Any, ClassVar


class ApiError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal error"
    default_detail: ClassVar[str] = "The server could not complete the request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.detail = detail or self.default_detail
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}
        super().__init__(self.detail)


class BadRequest(ApiError):
    status, code, title = 400, "bad_request", "Bad request"
    default_detail = "The request could not be understood"


class Unauthorized(ApiError):
    status, code, title = 401, "unauthorized", "Unauthorized"
    default_detail = "The request carries no verified identity"


class InsufficientBalance(ApiError):
    status, code, title = 402, "insufficient_balance", "Insufficient balance"


class SessionNotAccessible(ApiError):
    status, code, title = 403, "session_not_accessible", "Session not accessible"
    default_detail = "Your access to this session does not allow this action"


class NotFound(ApiError):
    status, code, title = 404, "not_found", "Not found"
    default_detail = "No such resource"


class SessionNotFound(NotFound):
    code, title = "session_not_found", "Session not found"

    def __init__(self, session_id: str) -> None:
        super().__init__(f"Session {session_id} does not exist")


class MessageNotFound(NotFound):
    code, title = "message_not_found", "Message not found"

    def __init__(self, message_id: str) -> None:
        super().__init__(f"Message {message_id} does not exist")


class ExportNotFound(NotFound):
    code, title = "export_not_found", "Export not found"

    def __init__(self, export_id: str) -> None:
        super().__init__(f"Export {export_id} does not exist")


class ShareNotFound(NotFound):
    code, title = "share_not_found", "Share not found"

    def __init__(self, share_id: str) -> None:
        super().__init__(f"Share {share_id} does not exist")


class SlideNotFound(NotFound):
    code, title = "slide_not_found", "Slide not found"

    def __init__(self, slide_id: str) -> None:
        super().__init__(f"Slide {slide_id} does not exist in this deck")


class RunNotFound(NotFound):
    code, title = "run_not_found", "Run not found"

    def __init__(self, request_id: str) -> None:
        super().__init__(f"Run {request_id} does not exist")


class ErasureNotFound(NotFound):
    code, title = "erasure_not_found", "Erasure not found"

    def __init__(self, erasure_id: str) -> None:
        super().__init__(f"Erasure {erasure_id} does not exist (or its receipt is past its keeping time)")


class NoSessionFound(NotFound):
    code, title = "no_session_found", "No session found"
    default_detail = "You have no active session to continue"


class MethodNotAllowed(ApiError):
    status, code, title = 405, "method_not_allowed", "Method not allowed"


class Conflict(ApiError):
    status, code, title = 409, "conflict", "Conflict"
    default_detail = "The request conflicts with the current state"


class InvalidStateTransition(Conflict):
    code, title = "invalid_state_transition", "Invalid state transition"


class SessionBusy(Conflict):
    code, title = "session_busy", "Session busy"
    default_detail = "Another chat request on this session is still running"


class SessionExpired(Conflict):
    code, title = "session_expired", "Session expired"
    default_detail = "The session has expired and accepts no more writes"


class PreconditionFailed(ApiError):
    status, code, title = 412, "precondition_failed", "Precondition failed"
    default_detail = "If-Match does not match the current version"


class PayloadTooLarge(ApiError):
    status, code, title = 413, "payload_too_large", "Payload too large"


class UnsupportedMediaType(ApiError):
    status, code, title = 415, "unsupported_media_type", "Unsupported media type"
    default_detail = "Send the body as application/json"


class ValidationFailed(ApiError):
    status, code, title = 422, "validation_error", "Validation error"
    default_detail = "The request is not valid"


class SessionQuotaExceeded(ApiError):
    status, code, title = 429, "session_quota_exceeded", "Session quota exceeded"


class RateLimited(ApiError):
    status, code, title = 429, "rate_limited", "Rate limited"

    def __init__(self, detail: str | None = None, *, retry_after: int = 1) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class ServiceUnavailable(ApiError):
    status, code, title = 503, "service_unavailable", "Service unavailable"
    default_detail = "A backing service is unavailable; retry later"

    def __init__(self, detail: str | None = None, *, retry_after: int = 1) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class ModelFailed(ApiError):
    """The language model refused or failed the request (the chat stored an `is_error` reply)."""

    status, code, title = 502, "model_error", "Model error"
    default_detail = "The model could not answer this request"


def validation_error(field: str, message: str, error_type: str = "value_error") -> ValidationFailed:
    """A 422 about one field, in the same shape as the generated request-validation errors."""
    return ValidationFailed(message, errors=[{"field": field, "message": message, "type": error_type}])

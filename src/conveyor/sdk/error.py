"""Exceptions of the Conveyor SDK, named like the official Files.com SDK's (`files_sdk.error`).

An error answer is mapped to its class by the last segment of the body's
``type`` (``bad-request/invalid-cursor`` -> ``InvalidCursorError``), then by
the first segment, then by the HTTP status. The hierarchy::

    Error
    ├── APIConnectionError            no usable answer: connection refused, timeout,
    │                                 broken connection, or a body that is not the API's
    └── APIError                      the server answered with an error
        ├── BadRequestError           400
        │   ├── InvalidBodyError
        │   ├── InvalidCursorError
        │   ├── InvalidCursorTypeForSortError
        │   ├── InvalidFilterFieldError
        │   ├── InvalidFilterParamValueError
        │   ├── InvalidPathError
        │   ├── InvalidSortFieldError
        │   ├── MethodNotAllowedError
        │   ├── MultipleSortParamsNotAllowedError
        │   ├── RequestParamsInvalidError
        │   └── RequestParamsRequiredError
        ├── NotAuthenticatedError     401
        │   ├── AuthenticationRequiredError
        │   └── InvalidCredentialsError
        ├── NotAuthorizedError        403
        │   ├── FullPermissionRequiredError
        │   ├── InsufficientPermissionForParamsError
        │   ├── ReadPermissionRequiredError
        │   ├── SiteAdminRequiredError
        │   └── WritePermissionRequiredError
        ├── NotFoundError             404
        │   └── UserNotFoundError
        ├── ProcessingFailureError    409, 422
        │   ├── AlreadyCompletedError
        │   ├── AutomationCannotBeRunManuallyError
        │   ├── ConflictError
        │   └── ResourceLockedError
        ├── RateLimitedError          429
        │   └── TooManyRequestsError
        ├── InternalServerError       500 and other 5xx (whatever their type)
        └── ServiceUnavailableError   503
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "APIConnectionError",
    "APIError",
    "AlreadyCompletedError",
    "AuthenticationRequiredError",
    "AutomationCannotBeRunManuallyError",
    "BadRequestError",
    "ConflictError",
    "Error",
    "FullPermissionRequiredError",
    "InsufficientPermissionForParamsError",
    "InternalServerError",
    "InvalidBodyError",
    "InvalidCredentialsError",
    "InvalidCursorError",
    "InvalidCursorTypeForSortError",
    "InvalidFilterFieldError",
    "InvalidFilterParamValueError",
    "InvalidPathError",
    "InvalidSortFieldError",
    "MethodNotAllowedError",
    "MultipleSortParamsNotAllowedError",
    "NotAuthenticatedError",
    "NotAuthorizedError",
    "NotFoundError",
    "ProcessingFailureError",
    "RateLimitedError",
    "ReadPermissionRequiredError",
    "RequestParamsInvalidError",
    "RequestParamsRequiredError",
    "ResourceLockedError",
    "ServiceUnavailableError",
    "SiteAdminRequiredError",
    "TooManyRequestsError",
    "UserNotFoundError",
    "WritePermissionRequiredError",
    "error_for_response",
]


class Error(Exception):
    """Base of every exception the SDK raises."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class APIConnectionError(Error):
    """No usable answer arrived; raised ``from`` the underlying httpx error when there is one."""


class APIError(Error):
    """The server answered with an error in the Files.com shape.

    `instance` is the request id the server logged the request under (also its
    X-Request-Id header): quote it when reporting a problem.
    """

    # The last segment of the Files.com `type` this class stands for.
    type_segment = ""

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        error_type: str | None = None,
        title: str | None = None,
        instance: str | None = None,
        json_body: Any = None,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.error_type = error_type
        self.title = title
        self.instance = instance
        self.json_body = json_body

    def __str__(self) -> str:
        # The official SDK's form, so logs read the same with either SDK.
        return f"HTTP {self.http_status} {self.message}" if self.http_status else self.message


class BadRequestError(APIError):
    type_segment = "bad-request"


class InvalidBodyError(BadRequestError):
    type_segment = "invalid-body"


class InvalidCursorError(BadRequestError):
    type_segment = "invalid-cursor"


class InvalidCursorTypeForSortError(BadRequestError):
    type_segment = "invalid-cursor-type-for-sort"


class InvalidFilterFieldError(BadRequestError):
    type_segment = "invalid-filter-field"


class InvalidFilterParamValueError(BadRequestError):
    type_segment = "invalid-filter-param-value"


class InvalidPathError(BadRequestError):
    type_segment = "invalid-path"


class InvalidSortFieldError(BadRequestError):
    type_segment = "invalid-sort-field"


class MethodNotAllowedError(BadRequestError):
    type_segment = "method-not-allowed"


class MultipleSortParamsNotAllowedError(BadRequestError):
    type_segment = "multiple-sort-params-not-allowed"


class RequestParamsInvalidError(BadRequestError):
    type_segment = "request-params-invalid"


class RequestParamsRequiredError(BadRequestError):
    type_segment = "request-params-required"


class NotAuthenticatedError(APIError):
    type_segment = "not-authenticated"


class AuthenticationRequiredError(NotAuthenticatedError):
    type_segment = "authentication-required"


class InvalidCredentialsError(NotAuthenticatedError):
    type_segment = "invalid-credentials"


class NotAuthorizedError(APIError):
    type_segment = "not-authorized"


class FullPermissionRequiredError(NotAuthorizedError):
    type_segment = "full-permission-required"


class InsufficientPermissionForParamsError(NotAuthorizedError):
    type_segment = "insufficient-permission-for-params"


class ReadPermissionRequiredError(NotAuthorizedError):
    type_segment = "read-permission-required"


class SiteAdminRequiredError(NotAuthorizedError):
    type_segment = "site-admin-required"


class WritePermissionRequiredError(NotAuthorizedError):
    type_segment = "write-permission-required"


class NotFoundError(APIError):
    type_segment = "not-found"


class UserNotFoundError(NotFoundError):
    type_segment = "user-not-found"


class ProcessingFailureError(APIError):
    type_segment = "processing-failure"


class AutomationCannotBeRunManuallyError(ProcessingFailureError):
    type_segment = "automation-cannot-be-run-manually"


class ConflictError(ProcessingFailureError):
    type_segment = "conflict"


class AlreadyCompletedError(ProcessingFailureError):
    """Cancel of a run that already finished."""

    type_segment = "already-completed"


class ResourceLockedError(ProcessingFailureError):
    """Rerun of a run that has not finished yet."""

    type_segment = "resource-locked"


class RateLimitedError(APIError):
    """Rate limited; `retry_after` is the seconds the server asked to wait, if it said."""

    type_segment = "rate-limited"
    retry_after: float | None = None


class TooManyRequestsError(RateLimitedError):
    type_segment = "too-many-requests"


class InternalServerError(APIError):
    type_segment = "internal-server-error"


class ServiceUnavailableError(APIError):
    type_segment = "service-unavailable"


def _subclasses(cls: type[APIError]) -> list[type[APIError]]:
    found = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_subclasses(sub))
    return found


# Every class of this module by its type segment. Families ("bad-request")
# are also keys, so the first segment of an unknown type still finds its family.
_BY_SEGMENT: dict[str, type[APIError]] = {cls.type_segment: cls for cls in _subclasses(APIError)}

_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: NotAuthenticatedError,
    403: NotAuthorizedError,
    404: NotFoundError,
    405: MethodNotAllowedError,
    409: ConflictError,
    422: ProcessingFailureError,
    429: TooManyRequestsError,
    503: ServiceUnavailableError,
}


def _class_for(error_type: str | None, status: int) -> type[APIError]:
    if error_type:
        family, _, name = error_type.rpartition("/")
        found = _BY_SEGMENT.get(name) or _BY_SEGMENT.get(family.split("/", 1)[0])
        # A server error: the server sends it as `processing-failure`, the class both
        # official SDKs have; here it is an InternalServerError unless it says more.
        if status >= 500 and found is not None and not issubclass(found, ServiceUnavailableError):
            return InternalServerError
        if found is not None:
            return found
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return InternalServerError if status >= 500 else APIError


def error_for_response(status: int, body: Any, reason: str = "") -> APIError:
    """The exception for an error answer: `body` is its decoded JSON (or None)."""
    fields: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    error_type = fields.get("type") if isinstance(fields.get("type"), str) else None
    title = fields.get("title") if isinstance(fields.get("title"), str) else None
    instance = fields.get("instance") if isinstance(fields.get("instance"), str) else None
    message = fields.get("error")
    if not isinstance(message, str) or not message.strip():
        message = title or reason or f"HTTP {status}"
    cls = _class_for(error_type, status)
    return cls(
        message,
        http_status=status,
        error_type=error_type,
        title=title,
        instance=instance,
        json_body=body,
    )

"""Domain errors, each carrying its Files.com error type and HTTP status.

Raise these anywhere; `conveyor.api.errors` is the one place that renders them
as Files.com JSON. The official SDKs map `type` to their exception classes:
the Python SDK by its last segment (``bad-request/invalid-cursor`` ->
``InvalidCursorError``), the JavaScript SDK by the whole of it
(``BadRequest_InvalidCursorError``; a one-part ``not-found`` ->
``NotFoundError``; anything it lacks -> the generic ``FilesApiError``). So
every type here names a class both SDKs have: a family alone (``not-found``)
where Files.com has no specific type (tests/compat/test_error_classes.py).
"""

from __future__ import annotations


class ConveyorError(Exception):
    """Base of every error a client may see."""

    http_status = 500
    # Neither official SDK has a class for a server error: ProcessingFailureError
    # is the closest one both have.
    error_type = "processing-failure"
    title = "Internal Server Error"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.title
        super().__init__(self.message)


class BadRequest(ConveyorError):
    http_status = 400
    error_type = "bad-request"
    title = "Bad Request"


class RequestParamsRequired(BadRequest):
    error_type = "bad-request/request-params-required"
    title = "Request Params Required"


class RequestParamsInvalid(BadRequest):
    error_type = "bad-request/request-params-invalid"
    title = "Request Params Invalid"


class DoesNotSupportSorting(BadRequest):
    error_type = "bad-request/does-not-support-sorting"
    title = "Does Not Support Sorting"


class InvalidSortField(BadRequest):
    error_type = "bad-request/invalid-sort-field"
    title = "Invalid Sort Field"


class MultipleSortParamsNotAllowed(BadRequest):
    error_type = "bad-request/multiple-sort-params-not-allowed"
    title = "Multiple Sort Params Not Allowed"


class InvalidFilterField(BadRequest):
    error_type = "bad-request/invalid-filter-field"
    title = "Invalid Filter Field"


class InvalidFilterParamValue(BadRequest):
    error_type = "bad-request/invalid-filter-param-value"
    title = "Invalid Filter Param Value"


class InvalidCursor(BadRequest):
    error_type = "bad-request/invalid-cursor"
    title = "Invalid Cursor"


class InvalidCursorTypeForSort(BadRequest):
    error_type = "bad-request/invalid-cursor-type-for-sort"
    title = "Invalid Cursor Type For Sort"


class InvalidPath(BadRequest):
    error_type = "bad-request/invalid-path"
    title = "Invalid Path"


class InvalidBody(BadRequest):
    error_type = "bad-request/invalid-body"
    title = "Invalid Body"


class AutomationCannotBeRunManually(ConveyorError):
    """Files.com's answer to a manual run it cannot start (here: a disabled automation)."""

    http_status = 422
    error_type = "processing-failure/automation-cannot-be-run-manually"
    title = "Automation Cannot Be Run Manually"


class AlreadyCompleted(ConveyorError):
    """Cancel of a run that already finished: nothing is changed (Files.com's type)."""

    http_status = 422
    error_type = "processing-failure/already-completed"
    title = "Already Completed"


class RunNotFinished(ConveyorError):
    """Rerun of a run that has not finished yet: nothing is changed.

    Files.com has no type of its own for it; `resource-locked` (the run is
    still being worked on) names a class in both official SDKs.
    """

    http_status = 422
    error_type = "processing-failure/resource-locked"
    title = "Automation Run Not Finished"


class AuthenticationRequired(ConveyorError):
    http_status = 401
    error_type = "not-authenticated/authentication-required"
    title = "Authentication Required"


class InvalidCredentials(ConveyorError):
    http_status = 401
    error_type = "not-authenticated/invalid-credentials"
    title = "Invalid Credentials"


class NotAuthorized(ConveyorError):
    http_status = 403
    error_type = "not-authorized"
    title = "Not Authorized"


class ReadPermissionRequired(NotAuthorized):
    error_type = "not-authorized/read-permission-required"
    title = "Read Permission Required"


class WritePermissionRequired(NotAuthorized):
    error_type = "not-authorized/write-permission-required"
    title = "Write Permission Required"


class FullPermissionRequired(NotAuthorized):
    error_type = "not-authorized/full-permission-required"
    title = "Full Permission Required"


class SiteAdminRequired(NotAuthorized):
    error_type = "not-authorized/site-admin-required"
    title = "Site Admin Required"


class InsufficientPermissionForParams(NotAuthorized):
    error_type = "not-authorized/insufficient-permission-for-params"
    title = "Insufficient Permission For Params"


class NotFound(ConveyorError):
    http_status = 404
    error_type = "not-found"
    title = "Not Found"


class UserNotFound(NotFound):
    error_type = "not-found/user-not-found"
    title = "User Not Found"


class MethodNotAllowed(ConveyorError):
    http_status = 405
    error_type = "bad-request/method-not-allowed"
    title = "Method Not Allowed"


class TooManyRequests(ConveyorError):
    http_status = 429
    error_type = "rate-limited/too-many-requests"
    title = "Too Many Requests"

    def __init__(self, message: str | None = None, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InternalServerError(ConveyorError):
    pass


class ServiceUnavailable(ConveyorError):
    """The database cannot serve now (unreachable, restarting, read-only, full).

    Files.com's type for its automation service being unavailable; both official
    SDKs have a class for it (`AutomationsUnavailableError` in Python,
    `ServiceUnavailable_AutomationsUnavailableError` in JavaScript). The request's
    transaction was rolled back (unless the connection was lost while the database
    acknowledged its commit), so a read may be sent again after `Retry-After`.
    """

    http_status = 503
    error_type = "service-unavailable/automations-unavailable"
    title = "Automations Unavailable"

    def __init__(self, message: str | None = None, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class IllegalTransition(ConveyorError):
    """A lifecycle rule of SPEC 1.1 would be broken; a programming error, not user input."""

    http_status = 409
    error_type = "processing-failure"
    title = "Illegal Run Transition"

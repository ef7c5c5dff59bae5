"""The API's exception tree.

Every error the API raises on purpose derives from ``ApiError`` (a ``TickarchiveError``)
and carries the HTTP status and a short ``error`` code; the app's exception handlers turn
it into ``{"error": ..., "detail": ...}``. Foreign errors (psycopg, pyarrow, archive) are
translated into these at the store boundary (``api.pool``, ``api.cold``).
"""

from __future__ import annotations

from tickarchive.errors import TickarchiveError


class ApiError(TickarchiveError):
    """Base of every API error."""

    status = 500
    code = "internal"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidRequest(ApiError):
    """A parameter is malformed or out of range (the message names it)."""

    status = 422
    code = "invalid_request"


class ResultTooLarge(ApiError):
    """The result would exceed ``api.max_rows``."""

    status = 413
    code = "result_too_large"


class NotFound(ApiError):
    """Nothing matches (e.g. no book snapshot within the lookback)."""

    status = 404
    code = "not_found"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class RateLimited(ApiError):
    status = 429
    code = "rate_limited"

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class StoreUnavailable(ApiError):
    """A store (QuestDB, PostgreSQL, the archive) could not be reached or failed a query."""

    status = 503
    code = "store_unavailable"

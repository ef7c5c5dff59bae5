"""The API's exception tree.

Every error the API raises on purpose derives from ``ApiError`` (a ``TickarchiveError``)
and carries the HTTP status and a short ``error`` code; the app's exception handlers turn
it into ``{"error": ..., "detail": ..., "request_id": ...}``. Foreign errors (psycopg,
pyarrow, archive) are translated into these at the store boundary (``api.pool``,
``api.cold``).

``StoreUnavailable`` keeps two texts: ``detail`` is stable and safe to show (which store,
never a path, SQL or a foreign message), ``internal`` is what happened; the app logs
``internal`` with the request id and answers only ``detail``.
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

    @property
    def headers(self) -> dict[str, str] | None:
        return None


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


class UnknownInstrument(NotFound):
    """An instrument name the archive has never seen (as opposed to one with no data in
    the requested range, which is a 200 with no rows and a ``note``)."""

    code = "unknown_instrument"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class PlanLimit(ApiError):
    """The key's plan does not allow this request (history depth, format, streams...)."""

    status = 403
    code = "plan_limit"


class _RetryLater(ApiError):
    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = max(1, int(retry_after_s))

    @property
    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(self.retry_after_s)}


class RateLimited(_RetryLater):
    status = 429
    code = "rate_limited"


class QuotaExceeded(_RetryLater):
    """The key's rows per day are used up (Retry-After: until the next UTC midnight)."""

    status = 429
    code = "quota_exceeded"


class Saturated(_RetryLater):
    """The API or a store is at its concurrency limit: try again shortly."""

    status = 503
    code = "saturated"


class StoreUnavailable(ApiError):
    """A store (QuestDB, PostgreSQL, the archive) could not be reached or failed a query."""

    status = 503
    code = "store_unavailable"

    def __init__(self, detail: str, internal: str | None = None) -> None:
        ApiError.__init__(self, detail)
        self.internal = internal or detail


class StoreTimeout(StoreUnavailable, _RetryLater):
    """A store call ran past its deadline (``api.statement_timeout_s``)."""

    code = "store_timeout"

    def __init__(self, detail: str, retry_after_s: int = 5, internal: str | None = None) -> None:
        StoreUnavailable.__init__(self, detail, internal)
        self.retry_after_s = retry_after_s

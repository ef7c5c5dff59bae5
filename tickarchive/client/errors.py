"""The client's exception tree: every failure the API reports, and every failure to reach it."""

from __future__ import annotations

from tickarchive.errors import TickarchiveError


class ClientError(TickarchiveError):
    """Base of every client error."""


class ApiError(ClientError):
    """The API answered an error: ``status`` (HTTP), ``code`` (``invalid_request``,
    ``unknown_instrument``, ``rate_limited``, ...), ``detail`` and, for 429/503,
    ``retry_after_s``."""

    def __init__(self, status: int, code: str, detail: str, retry_after_s: float | None = None) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.retry_after_s = retry_after_s


class Unreachable(ClientError):
    """The API could not be reached (connection refused, timeout, TLS...)."""


class StreamError(ClientError):
    """A stream ended with an ``error`` message (``code``, ``detail``) or was closed by
    the server (e.g. ``too_slow``, close code 4008)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail

"""The products' exception tree::

    ProductError                  (a TickarchiveError)
    └── InvalidProductRequest     an interval, range, depth or size that cannot be served
                                  (also an InvalidValue; the API answers 422, the CLI one line)
"""

from __future__ import annotations

from tickarchive.errors import InvalidValue, TickarchiveError


class ProductError(TickarchiveError):
    """Base of every error the products raise on purpose."""


class InvalidProductRequest(ProductError, InvalidValue):
    """A product request that cannot be served; the message names the parameter."""

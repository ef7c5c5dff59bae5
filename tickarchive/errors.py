"""The root of every package's exception tree.

Each package (``ingest``, ``store``, ``archive``, ``api``, ``loadtest``) defines its own
``errors.py`` whose base class derives from ``TickarchiveError`` and translates foreign
errors (OSError, psycopg, httpx, b2sdk, ...) at its boundary. The CLI prints a
``TickarchiveError`` as one line and exits non-zero; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations


class TickarchiveError(Exception):
    """An expected failure with a message an operator can act on."""

"""The ``loadtest`` exception tree.

Everything the simulator raises on purpose derives from ``LoadtestError`` (itself a
``TickarchiveError``, so the CLI prints it as one line). Foreign errors (OSError from a
socket or a file, pyarrow errors while spooling the send log) are translated here at
the boundary where they happen.
"""

from __future__ import annotations

from tickarchive.errors import TickarchiveError


class LoadtestError(TickarchiveError):
    """Base of every error the load-test package raises on purpose."""


class SimConfigError(LoadtestError):
    """A simulator setting or CLI flag is invalid."""


class FaultSpecError(SimConfigError):
    """A fault specification (``--fault`` flag or control request) cannot be parsed."""


class ReplayFormatError(LoadtestError):
    """A capture file given to ``--replay`` cannot be read."""


class SendLogError(LoadtestError):
    """The send log could not be spooled, read or exported."""


class SimServerError(LoadtestError):
    """The simulator server could not start (port in use, bad address, ...)."""

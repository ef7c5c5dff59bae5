"""The ``loadtest`` exception tree.

Everything the simulator raises on purpose derives from ``LoadtestError`` (itself a
``TickarchiveError``, so the CLI prints it as one line). Foreign errors (OSError from a
socket or a file, pyarrow errors while spooling the send log) are translated here at
the boundary where they happen.

The tree (each class's docstring says when it is raised)::

    TickarchiveError
    └── LoadtestError
        ├── SimConfigError
        │   └── FaultSpecError
        ├── ReplayFormatError
        ├── SendLogError
        ├── SimServerError
        ├── ReconcileError
        ├── RpcError
        ├── HarnessError
        └── ChaosError
"""

from __future__ import annotations

from typing import Any

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


class ReconcileError(LoadtestError):
    """An input of the reconciliation is missing or unreadable."""


class RpcError(LoadtestError):
    """A JSON-RPC error reply (not a failure of the simulator)."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message
        self.data = data


class HarnessError(LoadtestError):
    """The load harness could not start, drive or read one of its processes."""


class ChaosError(LoadtestError):
    """An unknown chaos mode or one the run cannot honour."""

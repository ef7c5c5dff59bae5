"""The local stack: QuestDB (hot), PostgreSQL (warm) and the PGlite TimescaleDB test server.

- ``Stack(settings)``: ``up()``, ``down()``, ``status()``, ``migrate()`` (what the CLI runs)
- ``QuestDBServer``, ``PostgresServer`` / ``ExternalPostgres``, ``PGliteServer``: one
  component each, same shape (``up``/``down``/``status``)
- ``handles``: small frozen handles with query helpers, used by the test fixtures
"""

from store.stack.pglite import PGliteServer
from store.stack.postgres import ExternalPostgres, PostgresServer, WarmDsns, warm_dsns
from store.stack.questdb import QuestDBServer
from store.stack.stack import Stack, UpReport
from store.stack.status import Action, ActionResult, ComponentStatus, Dialect, State

__all__ = [
    "Action",
    "ActionResult",
    "ComponentStatus",
    "Dialect",
    "ExternalPostgres",
    "PGliteServer",
    "PostgresServer",
    "QuestDBServer",
    "Stack",
    "State",
    "UpReport",
    "WarmDsns",
    "warm_dsns",
]

"""The local stack: QuestDB (hot), PostgreSQL (warm) and the PGlite TimescaleDB test server.

Modules (import from them directly; this package imports nothing, to keep
``store.migrate`` and the stack free of import cycles):

- ``store.stack.stack``: ``Stack(settings)`` with ``up()``, ``down()``, ``status()``,
  ``migrate()`` (what ``tickarchive up|down|status|migrate`` run)
- ``store.stack.questdb.QuestDBServer``, ``store.stack.postgres.PostgresServer`` /
  ``ExternalPostgres``, ``store.stack.pglite.PGliteServer``: one component each, same
  shape (``up``/``down``/``status``); ``store.stack.postgres.warm_dsns(settings)`` gives
  the owner/writer/reader DSNs of the warm store
- ``store.stack.handles``: frozen handles with query helpers (the pytest fixtures)
- ``store.stack.status``: ``ComponentStatus``, ``State``, ``Dialect``, ``ActionResult``
- ``store.stack.procs``: pid files, port checks, spawning and stopping processes
"""

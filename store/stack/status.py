"""What ``tickarchive status`` reports per component, and what ``up``/``down`` did."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from tickarchive.store.dialect import Dialect


class State(enum.StrEnum):
    UP = "up"
    DOWN = "down"
    UNHEALTHY = "unhealthy"
    """The process runs but does not answer its health check."""
    EXTERNAL = "external"
    """Not managed by us (an external DSN) and reachable."""
    UNREACHABLE = "unreachable"
    """Not managed by us and not reachable."""


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    name: str
    state: State
    address: str
    """host:port (QuestDB: http, pg wire and health ports)."""
    version: str | None = None
    pid: int | None = None
    data_bytes: int | None = None
    dialect: Dialect | None = None
    """Warm store only: the dialect migrations use."""
    detail: str = ""
    """Anything else worth a line: stale pid file removed, external DSN, web console URL."""


class Action(enum.StrEnum):
    STARTED = "started"
    ALREADY_RUNNING = "already running"
    EXTERNAL = "external"
    STOPPED = "stopped"
    NOT_RUNNING = "not running"


@dataclass(frozen=True, slots=True)
class ActionResult:
    name: str
    action: Action
    seconds: float
    """Wall time of the action (start-up time for STARTED)."""
    detail: str = ""

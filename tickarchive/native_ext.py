"""The ``tickarchive_native`` extension (the Rust crate in ``native/``, built by
``make install``), found once for every module that has a native fast path: the
collector's parser (``tickarchive.venues.deribit.native``), its WebSocket scanner (``ingest.wsfast``), the
journal's record encoder (``tickarchive.ingest.journal.format``) and the simulator's step
(``loadtest.sim.native``). Each keeps a pure-Python path of its own.

``TICKARCHIVE_NATIVE=0`` in the environment (read at import) switches every native path
off: A/B benchmarks and the fallback tests.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any, Final

EXT: ModuleType | None
"""The extension module, None when it is not built."""
try:
    import tickarchive_native as EXT
except ImportError:  # pragma: no cover - make install builds it; its tests fail without it
    EXT = None

SWITCHED_OFF: Final = os.environ.get("TICKARCHIVE_NATIVE", "1") == "0"
"""``TICKARCHIVE_NATIVE=0``: every native path deliberately off."""


def enabled(name: str) -> Any | None:
    """The extension's ``name`` (a function or class), or None when the extension is not
    built, lacks it, or is switched off."""
    if EXT is None or SWITCHED_OFF:
        return None
    return getattr(EXT, name, None)


def status() -> str:
    """One sentence for start-up logs: whether the native fast paths run, and why not."""
    if SWITCHED_OFF:
        return "native fast path off (TICKARCHIVE_NATIVE=0): pure-Python parsing, about 3x more CPU per frame"
    if EXT is None:
        return (
            "native fast path not installed (no Rust toolchain when `make install` ran): pure-Python parsing, "
            "about 3x more CPU per frame; install Rust (https://rustup.rs) and run `make install` to build it"
        )
    return "native fast path on (tickarchive_native)"

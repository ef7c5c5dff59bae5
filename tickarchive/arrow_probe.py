"""pyarrow's pandas probe, answered without importing pandas.

The first time pyarrow converts anything (``pa.array``, ``pa.scalar``, a compute call
with a Python value) it imports pandas, about 0.2 CPU-s, only to ask whether the input is
a pandas object. A command that never hands pyarrow a pandas object (``tickarchive
replay``) calls ``skip_pandas_probe`` before its first conversion: that one probe finds
pandas absent, which pyarrow remembers for its internal checks. Nothing else changes: an
explicit pandas conversion (``Table.to_pandas``) still imports pandas and works, and
``import pandas`` works as before (docs/archive.md, "Replay speed").
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType


class _PandasAbsent:
    """A meta-path finder under which ``import pandas`` fails."""

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name == "pandas":
            raise ImportError("pandas is not imported for pyarrow's probe (tickarchive.arrow_probe)")
        return None


def skip_pandas_probe() -> None:
    """Let pyarrow's first conversion find pandas absent, unless pandas is already imported
    (then the probe costs nothing) or pyarrow has probed already."""
    if "pandas" in sys.modules:
        return
    import pyarrow as pa

    finder = _PandasAbsent()
    sys.meta_path.insert(0, finder)
    try:
        pa.scalar(0)
    finally:
        sys.meta_path.remove(finder)

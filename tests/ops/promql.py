"""A small PromQL lexer for the tests: the metric and label names an expression uses.

Syntax is checked by promtool itself (``promtool check rules`` on a generated rules file);
this only extracts names, after removing strings, ranges and the label lists of
``by``/``without``/``on``/``ignoring``/``group_*`` clauses (which it collects).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tests.ops.metrics_contract import BUILTIN, CONTRACT

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_RANGE = re.compile(r"\[[^\]]*\]")
_CLAUSE = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_MATCHERS = re.compile(r"\{([^}]*)\}")
_IDENT = re.compile(r"(?<![\w.:$])([a-zA-Z_:][\w:]*)(\s*\()?")
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan"})
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


@dataclass(frozen=True)
class Names:
    metrics: frozenset[str]
    labels: frozenset[str]


def substitute_grafana(expr: str) -> str:
    for var, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(var, value)
    return expr


def names(expr: str) -> Names:
    text = _STRING.sub('""', substitute_grafana(expr))
    text = _RANGE.sub("", text)
    labels: set[str] = set()
    for _kw, inner in _CLAUSE.findall(text):
        labels.update(x.strip() for x in inner.split(",") if x.strip())
    text = _CLAUSE.sub(" ", text)
    for inner in _MATCHERS.findall(text):
        labels.update(m for m in re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", inner))
    text = _MATCHERS.sub(" ", text)
    metrics = {m for m, call in _IDENT.findall(text) if not call and m not in _KEYWORDS}
    return Names(frozenset(metrics), frozenset(labels))


def base_metric(name: str) -> str | None:
    """The contract name a series name belongs to (histograms: _bucket/_sum/_count); None if none."""
    known = {**CONTRACT, **BUILTIN}
    if name in known:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix):
            base = name[: -len(suffix)]
            if known.get(base, ("",))[0] == "histogram":
                return base
    return None

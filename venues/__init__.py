"""Venue adapters: one package per exchange, ``tickarchive.venues.<name>``, each exporting
``build(settings, ws_url=None) -> tickarchive.venue.Venue`` (docs/architecture.md, "The
venue seam"). ``load`` finds the one the settings name (``collector.venue``)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from tickarchive.errors import VenueError

if TYPE_CHECKING:
    from tickarchive.settings import Settings
    from tickarchive.venue import Venue


def load(settings: Settings, ws_url: str | None = None) -> Venue:
    """The adapter named by ``settings.collector.venue``, built from the settings;
    ``ws_url`` points it at a simulator of that venue instead of the exchange."""
    name = settings.collector.venue
    module_name = f"{__name__}.{name}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise VenueError(f"collector.venue = {name!r}: there is no venue adapter {module_name}") from None
    venue: Venue = module.build(settings, ws_url)
    return venue

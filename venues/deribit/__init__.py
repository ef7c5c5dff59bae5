"""The Deribit adapter: wire types, parsers, the sans-I/O session, sequence rules,
discovery, the history API and the native parser's entry points, behind
``tickarchive.venue.Venue`` (docs/architecture.md, "The venue seam")."""

from tickarchive.venues.deribit.adapter import DeribitVenue, build

__all__ = ["DeribitVenue", "build"]

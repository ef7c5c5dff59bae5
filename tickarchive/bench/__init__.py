"""Benchmarks: each module measures one part and prints its figures; ``tickarchive bench
...`` runs them (``tickarchive.cli.bench`` registers every one). Figures live in the
docs, never in timed test assertions."""

"""Products for the people who use the data (docs/api.md, "Products"): point-in-time
option chains, implied-volatility surfaces and top-N book snapshots over any range,
every point that falls inside a known gap marked, and the Tardis-compatible CSV forms.

Pure computation over frames (``polars``), read window by window from a ``TickSource``
(``products.source``); the API implements the source over every tier, the CLI's
``tickarchive export`` writes the results to files. Layer: imports only the core.

* ``timegrid``    intervals (``100ms`` .. ``31d``) and the instants of a range
* ``instruments`` expiry, strike and type from Deribit option names
* ``gaps``        which gaps matter to which product; marking points inside them
* ``chain``       chain snapshots (last quote as of each instant, staleness)
* ``surface``     IV surface points and per-expiry ATM / 25-delta RR and butterfly / term structure
* ``book``        top-N book snapshots rebuilt from snapshots + changes
* ``tardis``      Tardis ``options_chain`` and ``book_snapshot_N`` CSV
* ``condition``   per day and table: available / degraded / missing / pending
* ``build``       the products over a range from a ``TickSource``
"""

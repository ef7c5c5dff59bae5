"""The daily data-quality report (``tickarchive report quality --day D --out DIR``).

``source`` reads one UTC day from the hot store (QuestDB) or the warm store (when the
rollover ledger says the day is there); ``scan`` is the pure core that measures coverage,
trade completeness, volume reconciliation and the row checks (which flag, never drop);
``report`` assembles the figures; ``plots`` and ``html`` render them into a directory.
"""

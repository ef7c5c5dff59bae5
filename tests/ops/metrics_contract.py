"""The metrics contract (collector and API): name -> (type, labels). Dashboards and alert
rules may use only these names (plus Prometheus' own ``up``)."""

from __future__ import annotations

CONTRACT: dict[str, tuple[str, frozenset[str]]] = {
    # collector
    "tickarchive_frames_total": ("counter", frozenset({"connection", "channel"})),
    "tickarchive_ticks_total": ("counter", frozenset({"table"})),
    "tickarchive_stored_rows_total": ("counter", frozenset({"table"})),
    "tickarchive_exchange_lag_seconds": ("histogram", frozenset({"channel"})),
    "tickarchive_ack_lag_seconds": ("histogram", frozenset()),
    "tickarchive_journal_bytes_total": ("counter", frozenset()),
    "tickarchive_journal_backlog_bytes": ("gauge", frozenset()),
    "tickarchive_journal_fsync_seconds": ("histogram", frozenset()),
    "tickarchive_questdb_flush_seconds": ("histogram", frozenset({"table"})),
    "tickarchive_questdb_flush_errors_total": ("counter", frozenset({"table"})),
    "tickarchive_writer_buffered_rows": ("gauge", frozenset()),
    "tickarchive_reconnects_total": ("counter", frozenset({"connection"})),
    "tickarchive_connection_up": ("gauge", frozenset({"connection"})),
    "tickarchive_last_frame_timestamp_seconds": ("gauge", frozenset({"connection"})),
    "tickarchive_gaps_total": ("counter", frozenset({"kind"})),
    "tickarchive_open_gaps": ("gauge", frozenset({"kind"})),
    "tickarchive_max_open_gap_seconds": ("gauge", frozenset({"kind"})),
    "tickarchive_subscribed_channels": ("gauge", frozenset({"connection"})),
    "tickarchive_instruments": ("gauge", frozenset({"kind"})),
    "tickarchive_malformed_frames_total": ("counter", frozenset({"kind"})),
    "tickarchive_disk_free_bytes": ("gauge", frozenset({"path"})),
    "tickarchive_disk_total_bytes": ("gauge", frozenset({"path"})),
    "tickarchive_backfilled_trades_total": ("counter", frozenset()),
    "tickarchive_backfill_errors_total": ("counter", frozenset()),
    "tickarchive_quarantined_total": ("counter", frozenset({"reason"})),
    "tickarchive_journal_disk_bytes": ("gauge", frozenset()),
    "tickarchive_journal_oldest_segment_timestamp_seconds": ("gauge", frozenset()),
    # API
    "tickarchive_rollover_last_success_timestamp_seconds": ("gauge", frozenset()),
    "tickarchive_rollover_last_day_timestamp_seconds": ("gauge", frozenset()),
    "tickarchive_rollover_failures_total": ("counter", frozenset()),
    "tickarchive_archive_last_success_timestamp_seconds": ("gauge", frozenset()),
    "tickarchive_archive_failures_total": ("counter", frozenset()),
    "tickarchive_storage_bytes": ("gauge", frozenset({"tier"})),
    "tickarchive_api_requests_total": ("counter", frozenset({"endpoint", "status"})),
    "tickarchive_api_request_seconds": ("histogram", frozenset({"endpoint"})),
}

BUILTIN: dict[str, tuple[str, frozenset[str]]] = {"up": ("gauge", frozenset())}
"""Series Prometheus makes itself."""

TARGET_LABELS = frozenset({"job", "instance"})

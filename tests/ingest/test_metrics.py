"""``ingest.metrics``: the lock-free lag histogram exposes what prometheus-client's does."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from tickarchive.ingest.metrics import _LAG_BUCKETS, CollectorMetrics
from tickarchive.venues.deribit.adapter import channel_label


def test_lag_histogram_exposes_the_same_samples_as_a_client_histogram() -> None:
    m = CollectorMetrics()
    ref_registry = CollectorRegistry()
    ref = Histogram(
        "tickarchive_exchange_lag_seconds", "receive time minus exchange timestamp", ["channel"],
        buckets=_LAG_BUCKETS, registry=ref_registry,
    )
    values = {"ticker": [0.0, 0.0005, 0.001, 0.0010001, 0.2, 60.0, 100.0], "book": [0.003]}
    for channel, vs in values.items():
        fast, slow = m.exchange_lag.labels(channel), ref.labels(channel=channel)
        for v in vs:
            fast.observe(v)
            slow.observe(v)

    def lines(text: bytes, prefix: str) -> list[str]:
        return sorted(x for x in text.decode().splitlines() if x.startswith(prefix) and "_created" not in x)

    prefix = "tickarchive_exchange_lag_seconds"
    got = lines(generate_latest(m.registry), prefix)
    assert got == lines(generate_latest(ref_registry), prefix)
    assert 'tickarchive_exchange_lag_seconds_bucket{channel="ticker",le="0.001"} 3.0' in got
    assert m.registry.get_sample_value(f"{prefix}_count", {"channel": "ticker"}) == 7


def test_channel_label_of_real_frame_shapes() -> None:
    assert channel_label(b'{"method":"subscription","params":{"channel":"ticker.ETH-X.100ms"}}') == "ticker"
    assert channel_label(b'{"params":{"channel":"book.ETH-X.100ms","data":{}}}') == "book"
    assert channel_label(b'{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}') == "heartbeat"
    assert channel_label(b'{"jsonrpc":"2.0","id":7,"result":[]}') == "rpc"

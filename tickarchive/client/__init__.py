"""A small Python client for the tickarchive API (docs/api.md, "Python client").

REST pages as polars DataFrames or typed rows::

    from tickarchive.client import Client
    with Client("http://127.0.0.1:18000", api_key="ta_...") as api:
        day = api.quotes("ETH-27DEC24-4000-C", "2026-10-05", "2026-10-06", columns="bid_price,ask_price")
        for trade in api.rows("/trades", instrument="ETH-27DEC24-*", start="2026-10-05", end="2026-10-06"):
            print(trade.price, trade.amount)

Live and replay streams (asyncio)::

    from tickarchive.client import stream
    async for batch in stream.live("http://127.0.0.1:18000", currency="ETH", channels=["quotes"]):
        print(batch.channel, batch.frame.height, batch.position)
    async for m in stream.replay("http://127.0.0.1:18000", start="2026-10-05", end="2026-10-06",
                                 channels=["quotes", "trades"]):
        print(m.frame())  # several channels: one DataFrame per message, exchange-time order

The client imports only the core of tickarchive (``tickarchive.tables``) plus httpx,
websockets and polars.
"""

from tickarchive.client import stream
from tickarchive.client.errors import ApiError, ClientError, StreamError, Unreachable
from tickarchive.client.rest import Client
from tickarchive.client.rows import BookChange, Gap, Instrument, Quote, Trade

__all__ = [
    "ApiError",
    "BookChange",
    "Client",
    "ClientError",
    "Gap",
    "Instrument",
    "Quote",
    "StreamError",
    "Trade",
    "Unreachable",
    "stream",
]

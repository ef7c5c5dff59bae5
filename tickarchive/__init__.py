"""tickarchive: a loss-free, gap-aware archive of every Deribit option quote and trade."""

__version__ = "0.1.0"

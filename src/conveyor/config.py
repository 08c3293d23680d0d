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
        )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

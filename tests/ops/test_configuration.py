"""docs/configuration.md is the one reference: every setting, its variable and its default;
invalid values stop start-up naming the variable; `conveyor config show` masks secrets."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from conveyor.cli.ops import HIDDEN_FIELDS, effective_settings, env_name, mask_url
from conveyor.config import ConfigError, Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
ROW = re.compile(r"^\| `(CONVEYOR_[A-Z_]+)` \| (.+?) \| (.+) \|$")


def documented() -> dict[str, str]:
    """{variable: default cell} of the server settings table."""
    text = DOC.read_text()
    section = text.split("## Server settings", 1)[1].split("\n## ", 1)[0]
    return {m[1]: m[2] for line in section.splitlines() if (m := ROW.match(line))}


def settings_fields() -> list[dataclasses.Field[object]]:
    return [f for f in dataclasses.fields(Settings) if f.name not in HIDDEN_FIELDS]


def test_every_setting_is_documented_and_nothing_else() -> None:
    rows = documented()
    expected = {env_name(f.name) for f in settings_fields()}
    assert set(rows) == expected, (
        f"undocumented: {sorted(expected - set(rows))}; stale: {sorted(set(rows) - expected)}"
    )


def test_documented_defaults_are_the_real_defaults() -> None:
    rows = documented()
    for field in settings_fields():
        default = field.default
        if default is dataclasses.MISSING:
            continue  # derived from CONVEYOR_HOME; the table says how
        cell = rows[env_name(field.name)]
        if default is None:
            assert cell == "not set", field.name
            continue
        written = cell.strip("`")
        if isinstance(default, bool):
            assert written == str(default).lower(), field.name
        elif isinstance(default, int | float):
            assert float(written) == default, field.name
        else:
            assert written == default, field.name


def test_every_variable_is_read_from_the_environment(tmp_path: Path) -> None:
    """Setting each variable changes its setting: the name in the docs is the name in the code."""
    base = {"CONVEYOR_HOME": str(tmp_path)}
    plain = Settings.from_env(base)
    for field in settings_fields():
        value = getattr(plain, field.name)
        if isinstance(value, bool):
            raw, expected = str(not value).lower(), not value
        elif isinstance(value, int):
            raw, expected = str(value + 7), value + 7
        elif isinstance(value, float):
            raw, expected = str(value + 1.5), value + 1.5
        else:
            continue  # paths, URLs and choices have their own tests
        changed = Settings.from_env({**base, env_name(field.name): raw})
        assert getattr(changed, field.name) == expected, field.name


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        (env_name(f.name), "not-a-value")
        for f in dataclasses.fields(Settings)
        if f.type in ("int", "float", "bool") or f.name in ("log_level", "rate_limit_store")
    ]
    + [
        ("CONVEYOR_RETENTION_DAYS", "-1"),
        ("CONVEYOR_PUBLIC_URL", "ftp://x"),
        ("CONVEYOR_OUTCOME_BATCH_SIZE", "0"),
        ("CONVEYOR_OUTCOME_BATCH_SECONDS", "-0.1"),
    ],
)
def test_invalid_values_name_their_variable(name: str, raw: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({"CONVEYOR_HOME": str(tmp_path), name: raw})


def test_serve_refuses_to_start_on_an_invalid_setting(tmp_path: Path) -> None:
    env = {**os.environ, "CONVEYOR_HOME": str(tmp_path), "CONVEYOR_LOG_LEVEL": "loud"}
    result = subprocess.run(
        [sys.executable, "-m", "conveyor.cli.main", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "CONVEYOR_LOG_LEVEL must be one of debug, info, warning, error" in result.stderr


def test_config_show_masks_secrets(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "CONVEYOR_HOME": str(tmp_path),
        "CONVEYOR_SECRET_KEY": "very-secret-value",
        "CONVEYOR_DATABASE_URL": "postgresql://conveyor:hunter2@db.internal:5432/conveyor",
        "CONVEYOR_RETENTION_DAYS": "30",
    }
    shown = subprocess.run(
        [sys.executable, "-m", "conveyor.cli.main", "config", "show", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "very-secret-value" not in shown and "hunter2" not in shown
    rows = {row["name"]: row for row in orjson.loads(shown)}
    assert rows["CONVEYOR_SECRET_KEY"]["value"] == "***"
    assert rows["CONVEYOR_DATABASE_URL"]["value"] == (
        "postgresql+psycopg://conveyor:***@db.internal:5432/conveyor"
    )
    assert rows["CONVEYOR_RETENTION_DAYS"] == {
        "name": "CONVEYOR_RETENTION_DAYS",
        "value": 30,
        "source": "environment",
    }
    assert rows["CONVEYOR_PORT"]["source"] == "default"
    assert len(rows) == len(settings_fields())


def test_masking_and_table_rows(tmp_path: Path) -> None:
    assert mask_url("postgresql+psycopg://u:p@h/db") == "postgresql+psycopg://u:***@h/db"
    assert mask_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert mask_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    settings = Settings.from_env({"CONVEYOR_HOME": str(tmp_path)})
    rows = effective_settings(settings, {})
    assert {row["source"] for row in rows} == {"default"}
    assert next(r for r in rows if r["name"] == "CONVEYOR_SECRET_KEY")["value"] is None

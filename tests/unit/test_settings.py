"""Settings.from_env: defaults, normalisation, and one clear line for every bad value."""

from __future__ import annotations

import stat
from decimal import Decimal
from pathlib import Path

import pytest

from infra.settings import ConfigError, Settings

SECRET = "s" * 32


def env_for(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"MARKETGRAPH_DATA_DIR": str(tmp_path / "data"), **values}


def config_error(env: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(env)
    message = str(raised.value)
    assert "\n" not in message
    return message


# --- what a valid environment gives --------------------------------------------------------


def test_empty_environment_is_the_embedded_development_default(tmp_path: Path) -> None:
    settings = Settings.from_env(env_for(tmp_path))
    assert settings.environment == "development"
    assert not settings.production
    assert settings.is_sqlite
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'data' / 'marketgraph.db'}"
    assert settings.redis_url is None
    assert settings.graphiql
    assert settings.introspection
    assert settings.max_body_bytes == 1_000_000


def test_development_secret_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    first = Settings.from_env(env_for(tmp_path))
    second = Settings.from_env(env_for(tmp_path))
    assert len(first.jwt_secret) >= 32
    assert second.jwt_secret == first.jwt_secret
    stored = tmp_path / "data" / "jwt-secret"
    assert stored.read_text() == first.jwt_secret
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600


def test_production_turns_the_tools_off_unless_enabled(tmp_path: Path) -> None:
    base = env_for(tmp_path, MARKETGRAPH_ENV="production", JWT_SECRET=SECRET)
    settings = Settings.from_env(base)
    assert settings.production
    assert (settings.graphiql, settings.introspection) == (False, False)
    enabled = Settings.from_env(base | {"GRAPHIQL_ENABLED": "yes", "INTROSPECTION_ENABLED": "1"})
    assert (enabled.graphiql, enabled.introspection) == (True, True)
    assert not (tmp_path / "data" / "jwt-secret").exists()


def test_development_tools_can_be_turned_off(tmp_path: Path) -> None:
    settings = Settings.from_env(
        env_for(tmp_path, GRAPHIQL_ENABLED="off", INTROSPECTION_ENABLED="False")
    )
    assert (settings.graphiql, settings.introspection) == (False, False)


@pytest.mark.parametrize(
    ("given", "normalised"),
    [
        (
            "postgresql://app@db.internal:5433/market",
            "postgresql+asyncpg://app@db.internal:5433/market",
        ),
        ("postgres://app:pw@db/market", "postgresql+asyncpg://app:pw@db/market"),
        ("postgresql+asyncpg://app@db/market", "postgresql+asyncpg://app@db/market"),
        ("sqlite:////var/lib/mg.db", "sqlite+aiosqlite:////var/lib/mg.db"),
    ],
)
def test_database_urls_are_normalised_to_the_async_drivers(
    tmp_path: Path, given: str, normalised: str
) -> None:
    settings = Settings.from_env(env_for(tmp_path, DATABASE_URL=given, JWT_SECRET=SECRET))
    assert settings.database_url == normalised


def test_values_are_read(tmp_path: Path) -> None:
    settings = Settings.from_env(
        env_for(
            tmp_path,
            JWT_SECRET=SECRET,
            REDIS_URL="redis://cache:6380/2",
            TRUSTED_PROXIES="10.0.0.0/8, ::1 ,192.168.1.7",
            LOG_LEVEL="debug",
            LOG_FORMAT="Console",
            MAX_BODY_BYTES="2048",
            ACCESS_TOKEN_TTL_SECONDS="60",
            STARTING_BALANCE="250.50",
            DB_POOL_SIZE="3",
        )
    )
    assert settings.jwt_secret == SECRET
    assert settings.redis_url == "redis://cache:6380/2"
    assert settings.trusted_proxies == ("10.0.0.0/8", "::1", "192.168.1.7")
    assert (settings.log_level, settings.log_format) == ("DEBUG", "console")
    assert settings.max_body_bytes == 2048
    assert settings.access_token_ttl_seconds == 60
    assert settings.starting_balance == Decimal("250.50")
    assert settings.db_pool_size == 3


def test_empty_values_mean_the_default(tmp_path: Path) -> None:
    blank = {
        name: ""
        for name in (
            "MARKETGRAPH_ENV",
            "DATABASE_URL",
            "REDIS_URL",
            "GRAPHIQL_ENABLED",
            "LOG_LEVEL",
            "LOG_FORMAT",
            "MAX_BODY_BYTES",
        )
    }
    settings = Settings.from_env(env_for(tmp_path, **blank))
    defaults = Settings.from_env(env_for(tmp_path))
    assert settings == defaults


# --- what a bad environment gives: one line naming the variable ---------------------------


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("DATABASE_URL", "not a url", "not a database URL"),
        ("DATABASE_URL", "postgresql://app@db:port/market", "not a database URL"),
        ("DATABASE_URL", "postgresql://app@[::1/market", "not a database URL"),
        ("DATABASE_URL", "postgresql://app@db:70000/market", "out of range"),
        ("DATABASE_URL", "postgresql://app@db", "names no database"),
        ("DATABASE_URL", "mysql://app@db/market", "unsupported database 'mysql'"),
        ("DATABASE_URL", "postgresql+psycopg2://app@db/m", "unsupported"),
        ("DATABASE_URL", "sqlite+aiosqlite://", "file path"),
        ("DATABASE_URL", "sqlite+aiosqlite:///:memory:", "file path"),
        ("REDIS_URL", "http://cache:6379", "redis://"),
        ("REDIS_URL", "redis://cache:port/0", "port"),
        ("REDIS_URL", "redis://cache:6379/zero", "database 'zero'"),
        ("MARKETGRAPH_ENV", "staging", "development, production"),
        ("JWT_SECRET", "short", "at least 32"),
        ("TRUSTED_PROXIES", "10.0.0.0/8,proxy.internal", "'proxy.internal'"),
        ("TRUSTED_PROXIES", "300.1.1.1", "'300.1.1.1'"),
        ("GRAPHIQL_ENABLED", "maybe", "true or false"),
        ("INTROSPECTION_ENABLED", "2", "true or false"),
        ("LOG_LEVEL", "verbose", "DEBUG"),
        ("LOG_FORMAT", "xml", "json"),
        ("MAX_BODY_BYTES", "1MB", "whole number"),
        ("MAX_BODY_BYTES", "10", "between"),
        ("ACCESS_TOKEN_TTL_SECONDS", "0", "between"),
        ("ACCESS_TOKEN_TTL_SECONDS", "1.5", "whole number"),
        ("DB_POOL_SIZE", "1000", "between"),
        ("STARTING_BALANCE", "lots", "decimal"),
        ("STARTING_BALANCE", "-5", "non-negative"),
        ("STARTING_BALANCE", "NaN", "non-negative"),
        ("STARTING_BALANCE", "Infinity", "non-negative"),
    ],
)
def test_bad_value_names_the_variable(tmp_path: Path, variable: str, value: str, says: str) -> None:
    env = env_for(tmp_path, JWT_SECRET=SECRET) | {variable: value}
    message = config_error(env)
    assert message.startswith(f"{variable}: ")
    assert says in message


def test_production_requires_a_jwt_secret(tmp_path: Path) -> None:
    message = config_error(env_for(tmp_path, MARKETGRAPH_ENV="production"))
    assert message.startswith("JWT_SECRET: ")
    assert "production" in message


def test_unwritable_data_dir_names_the_variable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    message = config_error({"MARKETGRAPH_DATA_DIR": str(blocker / "data")})
    assert message.startswith("MARKETGRAPH_DATA_DIR: ")
    assert "JWT_SECRET" in message


def test_damaged_development_secret_is_reported(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "jwt-secret").write_text("\n")
    message = config_error(env_for(tmp_path))
    assert message.startswith("JWT_SECRET: ")
    assert "jwt-secret" in message

"""Settings.from_env: defaults, normalisation, and one clear line for every bad value."""

from __future__ import annotations

import stat
from decimal import Decimal
from pathlib import Path

import pytest

from infra.settings import ConfigError, Settings

SECRET = "s" * 32
PG = "postgresql://app@db.internal:5432/market"


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
    base = env_for(tmp_path, MARKETGRAPH_ENV="production", JWT_SECRET=SECRET, DATABASE_URL=PG)
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
    message = config_error(env_for(tmp_path, MARKETGRAPH_ENV="production", DATABASE_URL=PG))
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


# --- production refuses the embedded defaults ---------------------------------------------


def test_production_requires_a_database_url(tmp_path: Path) -> None:
    message = config_error(env_for(tmp_path, MARKETGRAPH_ENV="production", JWT_SECRET=SECRET))
    assert message.startswith("DATABASE_URL: required when MARKETGRAPH_ENV=production")
    # Nothing was set up for the embedded default: no directory, no generated secret.
    assert not (tmp_path / "data").exists()


def test_production_without_anything_generates_nothing(tmp_path: Path) -> None:
    config_error(env_for(tmp_path, MARKETGRAPH_ENV="production"))
    config_error(env_for(tmp_path, MARKETGRAPH_ENV="production", DATABASE_URL=PG))
    assert not (tmp_path / "data").exists()


def test_production_may_name_a_sqlite_file_explicitly(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'chosen.db'}"
    settings = Settings.from_env(
        env_for(tmp_path, MARKETGRAPH_ENV="production", JWT_SECRET=SECRET, DATABASE_URL=url)
    )
    assert settings.production
    assert settings.database_url == url


# --- pool, headers, CORS, GraphiQL assets -------------------------------------------------


def test_pool_and_header_defaults(tmp_path: Path) -> None:
    settings = Settings.from_env(env_for(tmp_path))
    # One process's concurrency, kept open: no overflow connections closed on return.
    assert (settings.db_pool_size, settings.db_pool_overflow) == (16, 0)
    assert settings.db_read_pool_size == 16
    assert settings.db_pool_timeout_seconds == 5.0
    assert settings.max_header_bytes == 32_768
    assert settings.graphiql_assets_dir is None


def test_pool_and_header_values_are_read(tmp_path: Path) -> None:
    settings = Settings.from_env(
        env_for(
            tmp_path,
            DB_POOL_OVERFLOW="4",
            DB_POOL_TIMEOUT_SECONDS="0.5",
            MAX_HEADER_BYTES="8192",
            GRAPHIQL_ASSETS_DIR="/opt/graphiql",
        )
    )
    assert settings.db_pool_overflow == 4
    assert settings.db_pool_timeout_seconds == 0.5
    assert settings.max_header_bytes == 8192
    assert settings.graphiql_assets_dir == Path("/opt/graphiql")


def test_cors_defaults_to_localhost_in_development_and_nothing_in_production(
    tmp_path: Path,
) -> None:
    development = Settings.from_env(env_for(tmp_path))
    assert (development.cors_origins, development.cors_localhost) == ((), True)
    production = Settings.from_env(
        env_for(tmp_path, MARKETGRAPH_ENV="production", JWT_SECRET=SECRET, DATABASE_URL=PG)
    )
    assert (production.cors_origins, production.cors_localhost) == ((), False)


@pytest.mark.parametrize(
    ("given", "origins"),
    [
        (
            "https://app.example.com, http://localhost:3000",
            ("https://app.example.com", "http://localhost:3000"),
        ),
        ("HTTPS://App.Example.com:443/", ("https://app.example.com",)),
        ("http://[::1]:5173,http://example.com:80", ("http://[::1]:5173", "http://example.com")),
        ("*", ("*",)),
        ("none", ()),
    ],
)
def test_cors_origins_are_read_as_browsers_send_them(
    tmp_path: Path, given: str, origins: tuple[str, ...]
) -> None:
    settings = Settings.from_env(env_for(tmp_path, CORS_ORIGINS=given))
    assert settings.cors_origins == origins
    # Naming origins replaces the development default.
    assert not settings.cors_localhost


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("CORS_ORIGINS", "app.example.com", "not an origin"),
        ("CORS_ORIGINS", "https://app.example.com/path", "not an origin"),
        ("CORS_ORIGINS", "ftp://files.example.com", "not an origin"),
        ("CORS_ORIGINS", "https://user@app.example.com", "not an origin"),
        ("CORS_ORIGINS", "https://app.example.com:port", "bad port"),
        ("CORS_ORIGINS", "*,https://app.example.com", "'*'"),
        ("DB_POOL_OVERFLOW", "-1", "between"),
        ("DB_POOL_TIMEOUT_SECONDS", "soon", "seconds"),
        ("DB_POOL_TIMEOUT_SECONDS", "0", "between"),
        ("DB_POOL_TIMEOUT_SECONDS", "nan", "between"),
        ("MAX_HEADER_BYTES", "100", "between"),
    ],
)
def test_bad_new_values_name_the_variable(
    tmp_path: Path, variable: str, value: str, says: str
) -> None:
    message = config_error(env_for(tmp_path, JWT_SECRET=SECRET) | {variable: value})
    assert message.startswith(f"{variable}: ")
    assert says in message

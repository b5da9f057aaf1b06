"""The cache's and persisted documents' settings: defaults, values, and bad values named."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.settings import ConfigError, Settings


def env_for(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"MARKETGRAPH_DATA_DIR": str(tmp_path / "data"), **values}


def test_defaults(tmp_path: Path) -> None:
    settings = Settings.from_env(env_for(tmp_path))
    assert settings.response_cache
    assert settings.cache_max_age_seconds == 60
    assert settings.cache_stale_seconds == 10
    assert settings.cache_wait_seconds == 5.0
    assert settings.cache_timeout_seconds == 0.25
    assert (settings.cache_max_entries, settings.cache_max_bytes) == (10_000, 256_000_000)
    assert settings.cache_max_entry_bytes == 1_000_000
    assert settings.apq
    assert settings.apq_ttl_seconds == 86_400
    assert settings.trusted_documents == "off"
    assert not settings.trusted_documents_admin


def test_values_are_read(tmp_path: Path) -> None:
    settings = Settings.from_env(
        env_for(
            tmp_path,
            RESPONSE_CACHE="false",
            CACHE_MAX_AGE_SECONDS="5",
            CACHE_STALE_SECONDS="0",
            CACHE_WAIT_SECONDS="0.5",
            CACHE_TIMEOUT_MS="40",
            CACHE_MAX_ENTRIES="100",
            CACHE_MAX_BYTES="5000",
            CACHE_MAX_ENTRY_BYTES="1000",
            APQ="off",
            APQ_TTL_SECONDS="60",
            TRUSTED_DOCUMENTS="required",
            TRUSTED_DOCUMENTS_ADMIN="true",
        )
    )
    assert not settings.response_cache
    assert (settings.cache_max_age_seconds, settings.cache_stale_seconds) == (5, 0)
    assert settings.cache_wait_seconds == 0.5
    assert settings.cache_timeout_seconds == 0.04
    assert (settings.cache_max_entries, settings.cache_max_bytes) == (100, 5000)
    assert settings.cache_max_entry_bytes == 1000
    assert not settings.apq
    assert settings.apq_ttl_seconds == 60
    assert settings.trusted_documents == "required"
    assert settings.trusted_documents_admin


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("RESPONSE_CACHE", "maybe", "must be true or false"),
        ("CACHE_MAX_AGE_SECONDS", "0", "between 1 and 86400"),
        ("CACHE_STALE_SECONDS", "-1", "between 0 and 3600"),
        ("CACHE_WAIT_SECONDS", "nan", "between"),
        ("CACHE_TIMEOUT_MS", "fast", "whole number"),
        ("CACHE_MAX_ENTRIES", "0", "between 1"),
        ("APQ", "sometimes", "must be true or false"),
        ("TRUSTED_DOCUMENTS", "strict", "must be one of off, required"),
    ],
)
def test_bad_values_name_the_variable(tmp_path: Path, variable: str, value: str, says: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(env_for(tmp_path, **{variable: value}))
    assert str(raised.value).startswith(f"{variable}: ")
    assert says in str(raised.value)

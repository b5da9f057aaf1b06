"""The job settings: where jobs run, their retry policy, and one line for a bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.settings import ConfigError, Settings

SECRET = "s" * 32


def env_for(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"MARKETGRAPH_DATA_DIR": str(tmp_path / "data"), "JWT_SECRET": SECRET, **values}


def test_without_redis_jobs_run_in_process(tmp_path: Path) -> None:
    settings = Settings.from_env(env_for(tmp_path))
    assert settings.jobs_in_process
    assert settings.job_queue == "mg:jobs"
    assert (settings.job_max_attempts, settings.settlement_batch_size) == (5, 500)
    assert settings.market_close_cron == "* * * * *"


def test_with_redis_jobs_go_to_workers_unless_asked(tmp_path: Path) -> None:
    redis = {"REDIS_URL": "redis://cache:6379/0", "REDIS_KEY_PREFIX": "shop:"}
    assert not Settings.from_env(env_for(tmp_path, **redis)).jobs_in_process
    both = Settings.from_env(env_for(tmp_path, RUN_JOBS_IN_PROCESS="true", **redis))
    assert both.jobs_in_process
    # The queue lives under the key prefix unless named.
    assert both.job_queue == "shop:jobs"
    assert Settings.from_env(env_for(tmp_path, JOB_QUEUE="payouts", **redis)).job_queue == (
        "payouts"
    )


def test_values_are_read(tmp_path: Path) -> None:
    settings = Settings.from_env(
        env_for(
            tmp_path,
            WORKER_CONCURRENCY="4",
            JOB_MAX_ATTEMPTS="3",
            JOB_RETRY_DELAY_SECONDS="2",
            JOB_RETRY_MAX_DELAY_SECONDS="60",
            JOB_TIMEOUT_SECONDS="120",
            JOB_HEARTBEAT_SECONDS="10",
            WORKER_SWEEP_SECONDS="5",
            SETTLEMENT_BATCH_SIZE="50",
            MARKET_CLOSE_CRON="*/5 * * * *",
        )
    )
    assert (
        settings.worker_concurrency,
        settings.job_max_attempts,
        settings.job_retry_delay_seconds,
        settings.job_retry_max_delay_seconds,
        settings.job_timeout_seconds,
        settings.job_heartbeat_seconds,
        settings.worker_sweep_seconds,
        settings.settlement_batch_size,
        settings.market_close_cron,
    ) == (4, 3, 2, 60, 120, 10, 5, 50, "*/5 * * * *")


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("RUN_JOBS_IN_PROCESS", "false", "needs REDIS_URL"),
        ("RUN_JOBS_IN_PROCESS", "sometimes", "true or false"),
        ("MARKET_CLOSE_CRON", "every minute", "not a cron expression"),
        ("WORKER_CONCURRENCY", "0", "between"),
        ("JOB_MAX_ATTEMPTS", "many", "whole number"),
        ("SETTLEMENT_BATCH_SIZE", "100000", "between"),
    ],
)
def test_bad_value_names_the_variable(tmp_path: Path, variable: str, value: str, says: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(env_for(tmp_path, **{variable: value}))
    message = str(raised.value)
    assert message.startswith(f"{variable}: ")
    assert says in message
    assert "\n" not in message

"""Settings of the limits: pool size, sign-in ceiling, sessions, budgets and RATE_LIMITS."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.limits import BudgetSpec, RoleBudgets
from infra.settings import ConfigError, Settings


def settings(tmp_path: Path, **values: str) -> Settings:
    return Settings.from_env({"MARKETGRAPH_DATA_DIR": str(tmp_path), **values})


def test_defaults(tmp_path: Path) -> None:
    defaults = settings(tmp_path)
    assert defaults.redis_pool_size == 64
    assert defaults.signin_account_limit == 5
    assert defaults.signin_account_ceiling == 100
    assert defaults.refresh_reuse_grace_seconds == 10
    assert defaults.session_lifetime_seconds == 90 * 86_400
    assert defaults.rate_limits
    assert defaults.budgets == RoleBudgets()


def test_overrides(tmp_path: Path) -> None:
    custom = settings(
        tmp_path,
        REDIS_POOL_SIZE="200",
        SIGNIN_ACCOUNT_CEILING="40",
        REFRESH_REUSE_GRACE_SECONDS="0",
        SESSION_LIFETIME_SECONDS="86400",
        RATE_LIMITS="off",
        BUDGET_ANONYMOUS="100:2.5",
        BUDGET_ADMIN=" 50000:1000 ",
    )
    assert custom.redis_pool_size == 200
    assert custom.signin_account_ceiling == 40
    assert custom.refresh_reuse_grace_seconds == 0
    assert custom.session_lifetime_seconds == 86_400
    assert not custom.rate_limits
    assert custom.budgets.anonymous == BudgetSpec(100, 2.5)
    assert custom.budgets.admin == BudgetSpec(50_000, 1_000)
    assert custom.budgets.user == RoleBudgets().user


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("REDIS_POOL_SIZE", "2", "REDIS_POOL_SIZE: must be between 4 and 10000"),
        ("RATE_LIMITS", "sometimes", "RATE_LIMITS: must be true or false"),
        ("REFRESH_REUSE_GRACE_SECONDS", "-1", "REFRESH_REUSE_GRACE_SECONDS: must be between"),
        ("BUDGET_USER", "1000", "BUDGET_USER: expected capacity:restore_per_second"),
        ("BUDGET_USER", "0:5", "BUDGET_USER: expected capacity:restore_per_second"),
        ("BUDGET_USER", "100:0", "BUDGET_USER: expected capacity:restore_per_second"),
        ("BUDGET_USER", "100:nan", "BUDGET_USER: expected capacity:restore_per_second"),
        ("BUDGET_USER", "100:inf", "BUDGET_USER: expected capacity:restore_per_second"),
        ("BUDGET_MODERATOR", "lots:5", "BUDGET_MODERATOR: expected capacity:restore_per_second"),
    ],
)
def test_bad_values_name_the_variable(tmp_path: Path, name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        settings(tmp_path, **{name: value})
    assert str(raised.value).startswith(message)

"""Sign-in throttling: counted per signIn execution, and holding without Redis."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from infra.settings import Settings
from tests.support import (
    LiveServer,
    MakeAccount,
    RedisProcess,
    expect_throttle_status,
    until_redis_answers,
)

ACCOUNT_LIMIT = 5


def aliased_sign_ins(count: int) -> str:
    fields = "\n".join(
        f"  a{i}: signIn(input: {{email: $email, password: $password}}) {{ __typename }}"
        for i in range(count)
    )
    return f"mutation ($email: String!, $password: String!) {{\n{fields}\n}}"


async def attempt(
    http: httpx.AsyncClient, count: int, email: str, password: str, client: str
) -> dict[str, Any]:
    response = await http.post(
        "/graphql",
        json={
            "query": aliased_sign_ins(count),
            "variables": {"email": email, "password": password},
        },
        headers={"X-Forwarded-For": client},
    )
    return expect_throttle_status(response)


def outcomes(payload: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """The typenames of the fields that ran, and the RATE_LIMITED errors of those that didn't."""
    data = payload.get("data") or {}
    typenames = [v["__typename"] for v in data.values() if v is not None]
    limited = [e for e in payload.get("errors", []) if e["extensions"]["code"] == "RATE_LIMITED"]
    return typenames, limited


def unknown_email() -> str:
    return f"nobody.{uuid.uuid4().hex}@example.com"


def fresh_client() -> str:
    return f"203.0.113.{uuid.uuid4().int % 250 + 1}"


@pytest.fixture
def client_address() -> str:
    # Distinct TEST-NET addresses keep the per-client window of one test out of another's.
    return f"198.51.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"


async def test_twenty_aliased_attempts_count_as_twenty(
    http: httpx.AsyncClient, make_account: MakeAccount, client_address: str
) -> None:
    account = await make_account("Aliased Target")
    payload = await attempt(http, 20, account.email, "wrong password!", client_address)
    typenames, limited = outcomes(payload)
    assert typenames == ["InvalidCredentialsError"] * ACCOUNT_LIMIT
    assert len(limited) == 20 - ACCOUNT_LIMIT
    assert all(0 < e["extensions"]["retryAfter"] <= 300 for e in limited)
    # This client is locked out of the account now, even with the right password ...
    again = await attempt(http, 1, account.email, account.password, client_address)
    assert outcomes(again) == ([], [again["errors"][0]]), again
    # ... while the owner, elsewhere, is not.
    owner = await attempt(http, 1, account.email, account.password, fresh_client())
    assert outcomes(owner) == (["SignInSuccess"], []), owner


async def test_the_owner_signs_in_while_other_clients_guess(
    http: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    account = await make_account("Guessed At")
    network = f"198.18.{uuid.uuid4().int % 250}"
    attackers = [f"{network}.{i}" for i in range(1, 5)]
    for attacker in attackers:
        payload = await attempt(http, 10, account.email, "wrong password!", attacker)
        typenames, limited = outcomes(payload)
        assert typenames == ["InvalidCredentialsError"] * ACCOUNT_LIMIT
        assert len(limited) == 10 - ACCOUNT_LIMIT
    owner = await attempt(http, 1, account.email, account.password, f"{network}.200")
    assert outcomes(owner) == (["SignInSuccess"], []), owner
    # An attacker who guesses right now is still refused: their window at the account is full.
    lucky = await attempt(http, 1, account.email, account.password, attackers[0])
    typenames, limited = outcomes(lucky)
    assert typenames == []
    assert len(limited) == 1


async def test_a_success_does_not_count_against_the_account(
    http: httpx.AsyncClient, make_account: MakeAccount, client_address: str
) -> None:
    account = await make_account("Often Signs In")
    payload = await attempt(http, 8, account.email, account.password, client_address)
    typenames, limited = outcomes(payload)
    assert typenames == ["SignInSuccess"] * 8
    assert limited == []


async def test_the_per_client_limit_spans_accounts(settings: Settings, client_address: str) -> None:
    # A server of its own with a small per-client limit: the shared one allows more,
    # since every test signs in from the same address.
    live = LiveServer(dataclasses.replace(settings, signin_client_limit=8))
    live.start()
    try:
        async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
            for _ in range(2):
                # Four failures per unknown email stays under the per-account limit.
                await attempt(http, 4, unknown_email(), "x" * 10, client_address)
            payload = await attempt(http, 1, unknown_email(), "x" * 10, client_address)
            assert outcomes(payload)[1], payload
            elsewhere = await attempt(http, 1, unknown_email(), "x" * 10, fresh_client())
            assert outcomes(elsewhere)[0] == ["InvalidCredentialsError"]
    finally:
        live.stop()


@pytest.fixture
async def faulty_server(
    settings: Settings, own_redis: RedisProcess
) -> AsyncIterator[tuple[httpx.AsyncClient, RedisProcess]]:
    live = LiveServer(dataclasses.replace(settings, redis_url=own_redis.url))
    live.start()
    try:
        async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
            await until_redis_answers(http)
            yield http, own_redis
    finally:
        live.stop()


async def test_throttling_holds_with_redis_stopped(
    faulty_server: tuple[httpx.AsyncClient, RedisProcess],
    make_account: MakeAccount,
    client_address: str,
) -> None:
    http, redis_process = faulty_server
    account = await make_account("Redis Down Target")
    first = await attempt(http, 2, account.email, "wrong password!", client_address)
    assert outcomes(first)[0] == ["InvalidCredentialsError"] * 2
    redis_process.stop()
    ready = await http.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    assert ready.json()["checks"]["redis"] == "unavailable, limits in process"
    payload = await attempt(http, 20, account.email, "wrong password!", client_address)
    typenames, limited = outcomes(payload)
    assert typenames == ["InvalidCredentialsError"] * ACCOUNT_LIMIT
    assert len(limited) == 20 - ACCOUNT_LIMIT
    # Back on the same port: readiness sees it, and the limits use it again.
    redis_process.start()
    ready = await http.get("/health/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["redis"] == "ok"
    shared = await attempt(http, 1, account.email, "wrong password!", fresh_client())
    assert outcomes(shared)[0] == ["InvalidCredentialsError"]


async def test_throttling_holds_with_redis_frozen(
    faulty_server: tuple[httpx.AsyncClient, RedisProcess],
    make_account: MakeAccount,
    client_address: str,
) -> None:
    http, redis_process = faulty_server
    account = await make_account("Redis Frozen Target")
    assert redis_process.process is not None
    os.kill(redis_process.process.pid, signal.SIGSTOP)
    try:
        payload = await attempt(http, 20, account.email, "wrong password!", client_address)
    finally:
        os.kill(redis_process.process.pid, signal.SIGCONT)
    typenames, limited = outcomes(payload)
    assert typenames == ["InvalidCredentialsError"] * ACCOUNT_LIMIT
    assert len(limited) == 20 - ACCOUNT_LIMIT


async def test_sign_ups_per_client_are_capped(settings: Settings, client_address: str) -> None:
    live = LiveServer(dataclasses.replace(settings, signup_client_limit=3))
    live.start()
    document = "mutation ($i: SignUpInput!) { signUp(input: $i) { __typename } }"

    async def sign_up(http: httpx.AsyncClient, client: str) -> dict[str, Any]:
        response = await http.post(
            "/graphql",
            json={
                "query": document,
                "variables": {
                    "i": {"email": unknown_email(), "password": "x" * 10, "displayName": "N"}
                },
            },
            headers={"X-Forwarded-For": client},
        )
        return expect_throttle_status(response)

    try:
        async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
            for _ in range(3):
                ok = await sign_up(http, client_address)
                assert ok["data"]["signUp"]["__typename"] == "SignUpSuccess"
            refused = await sign_up(http, client_address)
            assert refused["data"] == {"signUp": None}
            assert refused["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
            other = await sign_up(http, fresh_client())
            assert other["data"]["signUp"]["__typename"] == "SignUpSuccess"
    finally:
        live.stop()


# A server of their own for the bursts: 20 failures per client, 5 per account and
# client, and an account-wide ceiling of 10, so each test can tell which limit held.
BURST_CLIENT_LIMIT = 20
BURST_CEILING = 10


@pytest.fixture(scope="module", params=["redis", "in-process"])
def burst_server(request: pytest.FixtureRequest, settings: Settings) -> Iterator[LiveServer]:
    live = LiveServer(
        dataclasses.replace(
            settings,
            redis_url=settings.redis_url if request.param == "redis" else None,
            signin_client_limit=BURST_CLIENT_LIMIT,
            signin_account_limit=ACCOUNT_LIMIT,
            signin_account_ceiling=BURST_CEILING,
        )
    )
    live.start()
    yield live
    live.stop()


async def burst(
    live: LiveServer, attempts: list[tuple[str, str, str]]
) -> tuple[list[str], list[dict[str, Any]]]:
    """Every (email, password, client) attempt as its own request, all at once."""
    async with httpx.AsyncClient(
        base_url=live.url, timeout=60, limits=httpx.Limits(max_connections=len(attempts))
    ) as http:
        payloads = await asyncio.gather(
            *(attempt(http, 1, email, password, client) for email, password, client in attempts)
        )
    typenames: list[str] = []
    limited: list[dict[str, Any]] = []
    for payload in payloads:
        ran, refused = outcomes(payload)
        typenames += ran
        limited += refused
    # The Redis server never took the burst for an outage: every count above was shared.
    assert live.app.state.redis_breaker.outages == 0
    return typenames, limited


async def test_a_burst_from_one_client_is_checked_exactly_its_limit(
    burst_server: LiveServer, client_address: str
) -> None:
    typenames, limited = await burst(
        burst_server, [(unknown_email(), "x" * 10, client_address) for _ in range(50)]
    )
    assert typenames == ["InvalidCredentialsError"] * BURST_CLIENT_LIMIT
    assert len(limited) == 50 - BURST_CLIENT_LIMIT


async def test_a_burst_at_one_account_from_one_client_is_checked_exactly_its_limit(
    burst_server: LiveServer, client_address: str
) -> None:
    email = unknown_email()
    typenames, limited = await burst(
        burst_server, [(email, "wrong password!", client_address) for _ in range(60)]
    )
    assert typenames == ["InvalidCredentialsError"] * ACCOUNT_LIMIT
    assert len(limited) == 60 - ACCOUNT_LIMIT


async def test_a_burst_at_one_account_from_many_clients_stops_at_the_ceiling(
    burst_server: LiveServer, make_account: MakeAccount
) -> None:
    account = await make_account("Ceiling Target")
    network = f"198.19.{uuid.uuid4().int % 250}"
    typenames, limited = await burst(
        burst_server,
        [(account.email, "wrong password!", f"{network}.{i}") for i in range(1, 61)],
    )
    assert typenames == ["InvalidCredentialsError"] * BURST_CEILING
    assert len(limited) == 60 - BURST_CEILING
    # The trade-off of the ceiling: past it, nobody signs in to the account for a while,
    # not even its owner from an address that never failed.
    assert all(0 < e["extensions"]["retryAfter"] <= 3600 for e in limited)
    owner = await burst(burst_server, [(account.email, account.password, f"{network}.200")])
    assert owner[0] == []
    assert len(owner[1]) == 1

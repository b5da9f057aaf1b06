"""No stale read after a committed write: for every mutation and job that changes what a
cached query shows, the next query shows the change.

Each test first makes sure its queries are cached (a second ask is a HIT), then writes
through the API (or a job), then asks again. The PostgreSQL runs cache on Redis; the
embedded runs in process.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.services.lifecycle import MarketLifecycle
from graph.cache_tags import MOST_TAGS_UNDER_A_WILDCARD
from infra.cache import StoreInvalidator, cache_wire, response_store
from infra.db.models import markets
from infra.db.uow import SqlUnitOfWork
from infra.redis import RedisBreaker
from infra.settings import Settings
from tests.api.caching import CacheClient, cache_server, cached_settings
from tests.api.trading import CANCEL, RESOLVE, buy, sell
from tests.conftest import CREATE_MARKET, future
from tests.support import (
    PASSWORD,
    Account,
    GraphQLClient,
    LiveServer,
    promote,
    sign_up_and_in,
    wait_for_job,
)

pytestmark = pytest.mark.embedded


@pytest.fixture(scope="module")
async def cached(settings: Settings) -> AsyncIterator[CacheClient]:
    async with cache_server(cached_settings(settings)) as client:
        yield client


@pytest.fixture
def gql(cached: CacheClient) -> GraphQLClient:
    return GraphQLClient(cached.http)


async def primed(
    cached: CacheClient,
    query: str,
    variables: dict[str, Any] | None = None,
    token: str | None = None,
) -> Any:
    """Ask until the answer comes from the cache; the cached data."""
    await cached.ask(query, variables, token)
    reply = await cached.ask(query, variables, token)
    assert reply.cache == "HIT", reply.payload
    return reply.data


async def fresh(
    cached: CacheClient,
    query: str,
    variables: dict[str, Any] | None = None,
    token: str | None = None,
) -> Any:
    """The next answer after a write: it must not be the cached one."""
    reply = await cached.ask(query, variables, token)
    assert reply.cache == "MISS", "the write must have invalidated the entry"
    return reply.data


async def new_market(gql: GraphQLClient, creator: Account, **fields: Any) -> dict[str, Any]:
    data = await gql.data(
        CREATE_MARKET,
        {
            "input": {
                "name": f"Will {uuid.uuid4().hex[:10]} be fresh?",
                "endDate": future(),
                **fields,
            }
        },
        token=creator.token,
    )
    assert data["createMarket"]["__typename"] == "CreateMarketSuccess", data
    market: dict[str, Any] = data["createMarket"]["market"]
    return market


def unique(query: str) -> str:
    """The same query under a text of its own: a cache key no other test shares."""
    return f"{query} # {uuid.uuid4().hex}"


# --- markets -----------------------------------------------------------------------------


async def test_create_market_shows_in_the_lists_it_joins(
    cached: CacheClient, gql: GraphQLClient
) -> None:
    creator = await sign_up_and_in(gql, "Creator")
    word = uuid.uuid4().hex[:8]
    listing = unique(
        "query ($word: String!) { markets(filter: {nameContains: $word}) { totalCount"
        " nodes { name } } }"
    )
    own = unique("query ($id: ID!) { user(id: $id) { markets { totalCount } } }")
    assert (await primed(cached, listing, {"word": word}))["markets"]["totalCount"] == 0
    assert (await primed(cached, own, {"id": creator.id}))["user"]["markets"]["totalCount"] == 0
    await new_market(gql, creator, name=f"Does {word} appear?")
    after = await fresh(cached, listing, {"word": word})
    assert after["markets"]["nodes"] == [{"name": f"Does {word} appear?"}]
    assert (await fresh(cached, own, {"id": creator.id}))["user"]["markets"]["totalCount"] == 1


async def test_create_market_with_a_purchase_shows_the_creators_balance(
    cached: CacheClient, gql: GraphQLClient
) -> None:
    creator = await sign_up_and_in(gql, "Buyer")
    query = unique("query { viewer { balance positions { totalCount } } }")
    before = await primed(cached, query, token=creator.token)
    await new_market(gql, creator, initialPurchase={"outcome": "YES", "amount": "25"})
    after = await fresh(cached, query, token=creator.token)
    assert after["viewer"]["positions"]["totalCount"] == 1
    assert float(after["viewer"]["balance"]) < float(before["viewer"]["balance"])


UPDATE = """
mutation ($input: UpdateMarketInput!) {
  updateMarket(input: $input) { __typename ... on UpdateMarketSuccess { market { id } } }
}
"""
DELETE = """
mutation ($input: DeleteMarketInput!) {
  deleteMarket(input: $input) { __typename }
}
"""


async def test_update_market_shows_everywhere_the_market_is_cached(
    cached: CacheClient, gql: GraphQLClient
) -> None:
    creator = await sign_up_and_in(gql, "Editor")
    market = await new_market(gql, creator)
    word = market["name"].split()[1]
    by_id = unique("query ($id: ID!) { market(id: $id) { id name description } }")
    # No id selected: the entry is tagged with every market (Market:*).
    anonymous_ids = unique(
        "query ($word: String!) { markets(filter: {nameContains: $word}) { nodes { name } } }"
    )
    by_node = unique("query ($id: ID!) { node(id: $id) { ... on Market { name } } }")
    await primed(cached, by_id, {"id": market["id"]})
    await primed(cached, anonymous_ids, {"word": word})
    await primed(cached, by_node, {"id": market["id"]})
    name = f"Will {word} be renamed, really?"
    data = await gql.data(
        UPDATE,
        {"input": {"id": market["id"], "name": name, "description": "Edited."}},
        token=creator.token,
    )
    assert data["updateMarket"]["__typename"] == "UpdateMarketSuccess"
    assert (await fresh(cached, by_id, {"id": market["id"]}))["market"]["description"] == "Edited."
    assert (await fresh(cached, anonymous_ids, {"word": word}))["markets"]["nodes"] == [
        {"name": name}
    ]
    assert (await fresh(cached, by_node, {"id": market["id"]}))["node"] == {"name": name}


MANY_MARKETS = unique("query ($ids: [ID!]!) { nodes(ids: $ids) { ... on Market { id name } } }")


async def renamed(gql: GraphQLClient, creator: Account, market: dict[str, Any]) -> str:
    name = f"Will {uuid.uuid4().hex[:10]} be renamed?"
    data = await gql.data(
        UPDATE, {"input": {"id": market["id"], "name": name}}, token=creator.token
    )
    assert data["updateMarket"]["__typename"] == "UpdateMarketSuccess", data
    return name


async def test_a_response_showing_many_markets_is_dropped_by_a_change_to_any_market(
    cached: CacheClient, gql: GraphQLClient
) -> None:
    """Over the limit, a response carries the kind's wildcard instead of each market's tag
    (graph/cache_tags.py): a change to one of its markets still reaches it, and so does a
    change to a market it does not show."""
    creator = await sign_up_and_in(gql, "Lister")
    shown = [await new_market(gql, creator) for _ in range(MOST_TAGS_UNDER_A_WILDCARD + 1)]
    elsewhere = await new_market(gql, creator)
    ids = {"ids": [market["id"] for market in shown]}
    await primed(cached, MANY_MARKETS, ids)
    name = await renamed(gql, creator, shown[-1])
    assert (await fresh(cached, MANY_MARKETS, ids))["nodes"][-1] == {
        "id": shown[-1]["id"],
        "name": name,
    }
    await primed(cached, MANY_MARKETS, ids)
    await renamed(gql, creator, elsewhere)
    await fresh(cached, MANY_MARKETS, ids)


async def test_a_response_showing_markets_up_to_the_limit_keeps_their_own_tags(
    cached: CacheClient, gql: GraphQLClient
) -> None:
    creator = await sign_up_and_in(gql, "Lister")
    shown = [await new_market(gql, creator) for _ in range(MOST_TAGS_UNDER_A_WILDCARD)]
    elsewhere = await new_market(gql, creator)
    ids = {"ids": [market["id"] for market in shown]}
    await primed(cached, MANY_MARKETS, ids)
    await renamed(gql, creator, elsewhere)
    assert (await cached.ask(MANY_MARKETS, ids)).cache == "HIT"
    name = await renamed(gql, creator, shown[0])
    assert (await fresh(cached, MANY_MARKETS, ids))["nodes"][0]["name"] == name


async def test_delete_market_removes_it_from_what_was_cached(
    cached: CacheClient, gql: GraphQLClient
) -> None:
    creator = await sign_up_and_in(gql, "Deleter")
    market = await new_market(gql, creator)
    by_id = unique("query ($id: ID!) { market(id: $id) { id name } }")
    own = unique("query ($id: ID!) { user(id: $id) { markets { totalCount nodes { id } } } }")
    await primed(cached, by_id, {"id": market["id"]})
    assert (await primed(cached, own, {"id": creator.id}))["user"]["markets"]["totalCount"] == 1
    data = await gql.data(DELETE, {"input": {"id": market["id"]}}, token=creator.token)
    assert data["deleteMarket"]["__typename"] == "DeleteMarketSuccess"
    assert (await fresh(cached, by_id, {"id": market["id"]}))["market"] is None
    assert (await fresh(cached, own, {"id": creator.id}))["user"]["markets"] == {
        "totalCount": 0,
        "nodes": [],
    }


CLOSE = """
mutation ($input: MarketIdInput!) {
  closeMarket(input: $input) { __typename ... on MarketChangeSuccess { market { id } } }
}
"""


@pytest.fixture
async def moderator(gql: GraphQLClient, db: AsyncEngine) -> Account:
    account = await sign_up_and_in(gql, "Moderator")
    # Promoted before it has asked anything, so nothing of it is cached yet.
    await promote(db, account, "MODERATOR")
    return account


async def test_close_market_shows_its_status_and_leaves_the_active_list(
    cached: CacheClient, gql: GraphQLClient, moderator: Account
) -> None:
    creator = await sign_up_and_in(gql, "Closer")
    market = await new_market(gql, creator)
    word = market["name"].split()[1]
    status = unique("query ($id: ID!) { market(id: $id) { id status } }")
    active = unique(
        "query ($word: String!) {"
        " markets(filter: {nameContains: $word, status: ACTIVE}) { totalCount } }"
    )
    await primed(cached, status, {"id": market["id"]})
    assert (await primed(cached, active, {"word": word}))["markets"]["totalCount"] == 1
    data = await gql.data(CLOSE, {"input": {"id": market["id"]}}, token=moderator.token)
    assert data["closeMarket"]["__typename"] == "MarketChangeSuccess"
    assert (await fresh(cached, status, {"id": market["id"]}))["market"]["status"] == "CLOSED"
    assert (await fresh(cached, active, {"word": word}))["markets"]["totalCount"] == 0


# --- trading -----------------------------------------------------------------------------

MARKET_STATE = (
    "query ($id: ID!) { market(id: $id) { id yesPrice volume"
    " positions { totalCount nodes { id shares } } trades { totalCount }"
    " priceHistory(interval: MINUTE) { trades } } }"
)
PORTFOLIO = (
    "query { viewer { id balance ledger { totalCount }"
    " positions { totalCount nodes { id shares } } trades { totalCount } } }"
)


async def test_buy_shares_shows_in_market_and_portfolio(
    cached: CacheClient, gql: GraphQLClient
) -> None:
    creator = await sign_up_and_in(gql, "Maker")
    trader = await sign_up_and_in(gql, "Trader")
    market = await new_market(gql, creator)
    state, portfolio = unique(MARKET_STATE), unique(PORTFOLIO)
    before = (await primed(cached, state, {"id": market["id"]}))["market"]
    mine = (await primed(cached, portfolio, token=trader.token))["viewer"]
    assert (await buy(gql, trader, market["id"], amount="10"))["__typename"] == "BuySharesSuccess"
    after = (await fresh(cached, state, {"id": market["id"]}))["market"]
    assert after["yesPrice"] > before["yesPrice"]
    assert after["volume"] == "10.00000000"
    assert (after["positions"]["totalCount"], after["trades"]["totalCount"]) == (1, 1)
    assert after["priceHistory"][0]["trades"] == 1
    now = (await fresh(cached, portfolio, token=trader.token))["viewer"]
    assert now["ledger"]["totalCount"] == mine["ledger"]["totalCount"] + 1
    assert (now["positions"]["totalCount"], now["trades"]["totalCount"]) == (1, 1)
    assert float(now["balance"]) == float(mine["balance"]) - 10


async def test_sell_shares_shows_in_market_and_portfolio(
    cached: CacheClient, gql: GraphQLClient
) -> None:
    creator = await sign_up_and_in(gql, "Maker")
    trader = await sign_up_and_in(gql, "Seller")
    market = await new_market(gql, creator)
    bought = await buy(gql, trader, market["id"], shares="10")
    assert bought["__typename"] == "BuySharesSuccess"
    state, portfolio = unique(MARKET_STATE), unique(PORTFOLIO)
    before = (await primed(cached, state, {"id": market["id"]}))["market"]
    mine = (await primed(cached, portfolio, token=trader.token))["viewer"]
    sold = await sell(gql, trader, market["id"], shares="4")
    assert sold["__typename"] == "SellSharesSuccess", sold
    after = (await fresh(cached, state, {"id": market["id"]}))["market"]
    assert after["yesPrice"] < before["yesPrice"]
    assert after["positions"]["nodes"][0]["shares"] == "6.00000000"
    assert after["trades"]["totalCount"] == 2
    now = (await fresh(cached, portfolio, token=trader.token))["viewer"]
    assert now["positions"]["nodes"][0]["shares"] == "6.00000000"
    assert float(now["balance"]) > float(mine["balance"])
    assert now["ledger"]["totalCount"] == mine["ledger"]["totalCount"] + 1


async def test_another_traders_trade_shows_in_a_holders_position_value(
    cached: CacheClient, gql: GraphQLClient
) -> None:
    """A position's value comes from its market's price: a trade by anyone moves it, even in
    a response that does not show the market."""
    creator = await sign_up_and_in(gql, "Maker")
    holder = await sign_up_and_in(gql, "Holder")
    other = await sign_up_and_in(gql, "Other")
    market = await new_market(gql, creator)
    assert (await buy(gql, holder, market["id"], shares="10"))["__typename"] == "BuySharesSuccess"
    values = unique(
        "query ($id: ID!) { user(id: $id) { id positions { nodes { id currentValue } } } }"
    )
    before = (await primed(cached, values, {"id": holder.id}))["user"]["positions"]["nodes"]
    assert (await buy(gql, other, market["id"], shares="50"))["__typename"] == "BuySharesSuccess"
    after = (await fresh(cached, values, {"id": holder.id}))["user"]["positions"]["nodes"]
    assert float(after[0]["currentValue"]) > float(before[0]["currentValue"])


# --- settlement (mutations and their jobs) -------------------------------------------------
# Here the job runs as soon as the mutation queued it, so the mutation's own invalidation
# may be what refreshes these entries; tests/api/test_cache_worker.py caches the answers
# between the two and proves the job's own invalidations.

SETTLED = (
    "query ($market: ID!) { viewer { balance ledger { totalCount } }"
    " market(id: $market) { id status outcome positions { nodes { id payout settledAt } } } }"
)


async def test_resolve_market_and_its_payout_job_show_everywhere(
    cached: CacheClient, gql: GraphQLClient, moderator: Account
) -> None:
    creator = await sign_up_and_in(gql, "Maker")
    holder = await sign_up_and_in(gql, "Winner")
    market = await new_market(gql, creator)
    assert (await buy(gql, holder, market["id"], shares="10"))["__typename"] == "BuySharesSuccess"
    settled = unique(SETTLED)
    before = await primed(cached, settled, {"market": market["id"]}, token=holder.token)
    data = await gql.data(
        RESOLVE,
        {"input": {"marketId": market["id"], "outcome": "YES"}},
        token=moderator.token,
    )
    job = data["resolveMarket"]["job"]
    # The job's state is cached too (PRIVATE, for the moderator): polling sees it move.
    finished = await wait_for_job(gql, job["id"], moderator.token)
    assert finished["state"] == "COMPLETE"
    after = await fresh(cached, settled, {"market": market["id"]}, token=holder.token)
    assert (after["market"]["status"], after["market"]["outcome"]) == ("RESOLVED", "YES")
    [position] = after["market"]["positions"]["nodes"]
    assert position["payout"] == "10.00000000"
    assert position["settledAt"] is not None
    assert float(after["viewer"]["balance"]) == float(before["viewer"]["balance"]) + 10
    assert after["viewer"]["ledger"]["totalCount"] == before["viewer"]["ledger"]["totalCount"] + 1


async def test_cancel_market_and_its_refund_job_show_everywhere(
    cached: CacheClient, gql: GraphQLClient, moderator: Account
) -> None:
    creator = await sign_up_and_in(gql, "Maker")
    holder = await sign_up_and_in(gql, "Refunded")
    market = await new_market(gql, creator)
    assert (await buy(gql, holder, market["id"], amount="7"))["__typename"] == "BuySharesSuccess"
    settled = unique(SETTLED)
    before = await primed(cached, settled, {"market": market["id"]}, token=holder.token)
    data = await gql.data(CANCEL, {"input": {"id": market["id"]}}, token=moderator.token)
    job = data["cancelMarket"]["job"]
    assert (await wait_for_job(gql, job["id"], moderator.token))["state"] == "COMPLETE"
    after = await fresh(cached, settled, {"market": market["id"]}, token=holder.token)
    assert after["market"]["status"] == "CANCELLED"
    assert after["market"]["positions"]["nodes"][0]["payout"] == "7.00000000"
    assert float(after["viewer"]["balance"]) == float(before["viewer"]["balance"]) + 7


JOB_STATE = "query ($id: ID!) { job(id: $id) { id state attempts } }"


async def test_a_jobs_state_is_never_served_stale(
    cached: CacheClient, gql: GraphQLClient, moderator: Account
) -> None:
    creator = await sign_up_and_in(gql, "Maker")
    market = await new_market(gql, creator)
    data = await gql.data(CANCEL, {"input": {"id": market["id"]}}, token=moderator.token)
    job = data["cancelMarket"]["job"]
    query = unique(JOB_STATE)
    deadline = time.monotonic() + 60
    while True:
        reply = await cached.ask(query, {"id": job["id"]}, token=moderator.token)
        if reply.data["job"]["state"] == "COMPLETE":
            break
        assert time.monotonic() < deadline, "the cached job state never moved"
        await asyncio.sleep(0.02)
    assert reply.data["job"]["attempts"] == 1
    # Once nothing writes any more, the finished state is what stays cached.
    cached_state = await primed(cached, query, {"id": job["id"]}, token=moderator.token)
    assert cached_state["job"]["state"] == "COMPLETE"


# --- users -------------------------------------------------------------------------------

SET_ROLE = """
mutation ($input: SetUserRoleInput!) {
  setUserRole(input: $input) { __typename ... on UserChangeSuccess { user { id } } }
}
"""
DISABLE = """
mutation ($input: UserIdInput!) {
  disableUser(input: $input) { __typename ... on UserChangeSuccess { user { id } } }
}
"""
ENABLE = DISABLE.replace("disableUser", "enableUser")


@pytest.fixture
async def admin(gql: GraphQLClient, db: AsyncEngine) -> Account:
    account = await sign_up_and_in(gql, "Admin")
    await promote(db, account, "ADMIN")
    return account


async def test_set_user_role_shows_in_public_and_private_entries(
    cached: CacheClient, gql: GraphQLClient, admin: Account
) -> None:
    target = await sign_up_and_in(gql, "Promoted")
    public = unique("query ($id: ID!) { user(id: $id) { id role } }")
    private = unique("query { viewer { id role permissions } }")
    assert (await primed(cached, public, {"id": target.id}))["user"]["role"] == "USER"
    mine = (await primed(cached, private, token=target.token))["viewer"]
    assert "market:resolve" not in mine["permissions"]
    data = await gql.data(
        SET_ROLE, {"input": {"userId": target.id, "role": "MODERATOR"}}, token=admin.token
    )
    assert data["setUserRole"]["__typename"] == "UserChangeSuccess"
    assert (await fresh(cached, public, {"id": target.id}))["user"]["role"] == "MODERATOR"
    now = (await fresh(cached, private, token=target.token))["viewer"]
    assert now["role"] == "MODERATOR"
    assert "market:resolve" in now["permissions"]


async def test_a_demoted_admin_no_longer_gets_what_only_admins_see(
    cached: CacheClient, gql: GraphQLClient, admin: Account, db: AsyncEngine
) -> None:
    """The entry is the admin's own (PRIVATE), but what it holds is another user: only
    the viewer's tag on it can drop it when the viewer's role changes."""
    demoted = await sign_up_and_in(gql, "Demoted")
    await promote(db, demoted, "ADMIN")
    other = await sign_up_and_in(gql, "Watched")
    query = unique("query ($id: ID!) { user(id: $id) { id email balance } }")
    seen = (await primed(cached, query, {"id": other.id}, token=demoted.token))["user"]
    assert seen["email"] == other.email
    data = await gql.data(
        SET_ROLE, {"input": {"userId": demoted.id, "role": "USER"}}, token=admin.token
    )
    assert data["setUserRole"]["__typename"] == "UserChangeSuccess"
    now = (await fresh(cached, query, {"id": other.id}, token=demoted.token))["user"]
    assert (now["email"], now["balance"]) == (None, None)


async def test_a_demoted_moderator_no_longer_reads_a_cached_job(
    cached: CacheClient, gql: GraphQLClient, admin: Account, moderator: Account
) -> None:
    creator = await sign_up_and_in(gql, "Maker")
    market = await new_market(gql, creator)
    data = await gql.data(CANCEL, {"input": {"id": market["id"]}}, token=moderator.token)
    job = data["cancelMarket"]["job"]
    # Finished first: nothing but the role change can drop the entry from here on.
    assert (await wait_for_job(gql, job["id"], moderator.token))["state"] == "COMPLETE"
    query = unique(JOB_STATE)
    assert (await primed(cached, query, {"id": job["id"]}, token=moderator.token))["job"][
        "state"
    ] == "COMPLETE"
    data = await gql.data(
        SET_ROLE, {"input": {"userId": moderator.id, "role": "USER"}}, token=admin.token
    )
    assert data["setUserRole"]["__typename"] == "UserChangeSuccess"
    refused = await cached.ask(query, {"id": job["id"]}, token=moderator.token)
    assert refused.cache == "MISS"
    assert refused.payload["data"] == {"job": None}
    assert refused.payload["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_disable_and_enable_user_show_and_end_the_users_cached_view(
    cached: CacheClient, gql: GraphQLClient, admin: Account
) -> None:
    target = await sign_up_and_in(gql, "Disabled")
    state = unique("query ($id: ID!) { user(id: $id) { id disabled } }")
    own = unique("query { viewer { id email } }")
    assert (await primed(cached, state, {"id": target.id}, token=admin.token))["user"][
        "disabled"
    ] is False
    await primed(cached, own, token=target.token)
    data = await gql.data(DISABLE, {"input": {"userId": target.id}}, token=admin.token)
    assert data["disableUser"]["__typename"] == "UserChangeSuccess"
    assert (await fresh(cached, state, {"id": target.id}, token=admin.token))["user"][
        "disabled"
    ] is True
    # The disabled user's token no longer stands: the cached entry is never reached.
    refused = await cached.ask(own, token=target.token)
    assert refused.status == 401
    await primed(cached, state, {"id": target.id}, token=admin.token)
    data = await gql.data(ENABLE, {"input": {"userId": target.id}}, token=admin.token)
    assert data["enableUser"]["__typename"] == "UserChangeSuccess"
    assert (await fresh(cached, state, {"id": target.id}, token=admin.token))["user"][
        "disabled"
    ] is False


SIGN_OUT_EVERYWHERE = "mutation { signOutEverywhere { signedOut } }"
CHANGE_PASSWORD = """
mutation ($input: ChangePasswordInput!) {
  changePassword(input: $input) { __typename }
}
"""


@pytest.mark.parametrize("ending", ["signOut", "signOutEverywhere", "changePassword"])
async def test_ending_a_session_ends_its_cached_view(
    cached: CacheClient, gql: GraphQLClient, ending: str
) -> None:
    user = await sign_up_and_in(gql, "Leaving")
    other = await sign_up_and_in(gql, "Other")
    other_device = await gql.data(
        "mutation ($input: SignInInput!) { signIn(input: $input) {"
        " ... on SignInSuccess { accessToken } } }",
        {"input": {"email": user.email, "password": PASSWORD}},
    )
    second_token = other_device["signIn"]["accessToken"]
    own = unique("query { viewer { id email balance } }")
    await primed(cached, own, token=user.token)
    await primed(cached, own, token=second_token)
    if ending == "changePassword":
        # Ends every session but the one that changed the password.
        data = await gql.data(
            CHANGE_PASSWORD,
            {"input": {"currentPassword": PASSWORD, "newPassword": "a brand new passphrase"}},
            token=second_token,
        )
        assert data["changePassword"]["__typename"] == "ChangePasswordSuccess"
    else:
        await gql.data(f"mutation {{ {ending} {{ signedOut }} }}", token=user.token)
    assert (await cached.ask(own, token=user.token)).status == 401
    survivor = await cached.ask(own, token=second_token)
    if ending == "signOutEverywhere":
        assert survivor.status == 401
    else:
        assert survivor.data["viewer"]["email"] == user.email
    # Nobody else's view changed.
    assert (await cached.ask(own, token=other.token)).status == 200


# --- jobs outside the API process ----------------------------------------------------------


async def test_closing_expired_markets_in_another_process_shows_in_the_api(
    cached: CacheClient, gql: GraphQLClient, db: AsyncEngine, settings: Settings
) -> None:
    """The scheduled close runs wherever a worker runs: its invalidations reach the API's
    cache through the store they share (Redis; in process on the embedded default)."""
    creator = await sign_up_and_in(gql, "Expiring")
    market = await new_market(gql, creator)
    status = unique("query ($id: ID!) { market(id: $id) { id status } }")
    assert (await primed(cached, status, {"id": market["id"]}))["market"]["status"] == "ACTIVE"
    async with db.begin() as conn:
        await conn.execute(
            sa.update(markets)
            .where(markets.c.id == _uuid(market["id"]))
            .values(end_date=datetime.now(UTC) - timedelta(minutes=1))
        )
    await _close_expired(cached.server, db)
    assert (await fresh(cached, status, {"id": market["id"]}))["market"]["status"] == "CLOSED"


def _uuid(global_id: str) -> uuid.UUID:
    from graph.ids import from_global_id

    parsed = from_global_id(global_id)
    assert parsed is not None
    return parsed[1]


async def _close_expired(server: LiveServer, db: AsyncEngine) -> None:
    """Close expired markets as a worker process would: its own engine, its own Redis client
    and breaker over the API's key space (the embedded default: the API's in-process store)."""
    settings = server.settings
    if settings.redis_url is None:
        lifecycle = MarketLifecycle(
            lambda: SqlUnitOfWork(db, StoreInvalidator(server.app.state.response_store)),
            lambda: datetime.now(UTC),
            _NoQueue(),
        )
        assert await lifecycle.close_expired()
        return
    wire = cache_wire(settings)
    store = response_store(settings, wire, RedisBreaker())
    assert store is not None
    lifecycle = MarketLifecycle(
        lambda: SqlUnitOfWork(db, StoreInvalidator(store)), lambda: datetime.now(UTC), _NoQueue()
    )
    try:
        assert await lifecycle.close_expired()
    finally:
        await store.close()
        assert wire is not None
        await wire.close()


class _NoQueue:
    async def enqueue(self, job: Any) -> None:
        raise AssertionError("closing markets queues no job")

"""README's Apollo Client cache set-up merges the pages of the trading examples.

A real Apollo Client (tests/node, as in test_apollo_client.py) with the ``typePolicies``
literal taken from README's Apollo example runs the contract operations MarketActivity
(a market's trades) and Ledger (the viewer's ledger) against the live server, then their
next pages as ``fetchMore`` does: the cache must then hold both pages, in order.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import orjson

from infra.settings import Settings
from tests.api.test_apollo_client import RUN_TIMEOUT, node_package
from tests.api.trading import seed_history
from tests.support import GraphQLClient, LiveServer, sign_up_and_in

__all__ = ["node_package"]  # a fixture of this module too

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ROOT / "tests" / "contract" / "operations"


def readme_type_policies() -> str:
    """The object literal README's Apollo example passes as ``typePolicies``."""
    text = (ROOT / "README.md").read_text()
    start = text.index("{", text.index("typePolicies:"))
    depth = 0
    for end in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[end], 0)
        if depth == 0:
            return text[start : end + 1]
    raise AssertionError("README's typePolicies literal is not closed")


def paging(package: Path, url: str, token: str, market_id: str) -> dict[str, Any]:
    node = shutil.which("node")
    assert node
    done = subprocess.run(
        [
            node,
            str(package / "paging.mjs"),
            url,
            token,
            market_id,
            readme_type_policies(),
            str(OPERATIONS),
        ],
        capture_output=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    result: dict[str, Any] = orjson.loads(done.stdout)
    return result


async def test_readmes_type_policies_merge_trades_and_ledger_pages(
    server: LiveServer, gql: GraphQLClient, settings: Settings, node_package: Path
) -> None:
    owner = await sign_up_and_in(gql, "Apollo Pager")
    # 61 ledger entries (Ledger pages 50) and a market with 60 trades (MarketActivity: 20).
    history = await seed_history(settings, owner, markets=30, crowd=60)
    got = paging(node_package, f"{server.url}/graphql", owner.token, history.busy)
    assert got["activity"] == {
        "afterFirst": history.busy_trades[:20],
        "afterSecond": history.busy_trades[:40],
    }
    assert got["ledger"] == {
        "afterFirst": history.owner_ledger[:50],
        "afterSecond": history.owner_ledger,
    }

"""GraphiQL: local assets when the server has them, the CDN otherwise; opens on TopMarkets."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from graph.graphiql import ASSETS, ASSETS_PATH, DEFAULT_QUERY, EXAMPLE_OPERATION, graphiql_html
from infra.settings import Settings
from tests.support import LiveServer

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = re.compile(r'<(?:script|link)[^>]*?(?:src|href)="([^"]+)"')
DEFAULT_QUERY_LITERAL = re.compile(r"defaultQuery: (\".*?\"),\n")


def references(page: str) -> list[str]:
    return REFERENCE.findall(page)


def default_query(page: str) -> str:
    match = DEFAULT_QUERY_LITERAL.search(page)
    assert match, "the page sets no defaultQuery"
    value: str = json.loads(match.group(1))
    return value


@pytest.fixture(scope="module")
def assets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stand-ins for the npm files (the Docker image has the real ones)."""
    directory = tmp_path_factory.mktemp("graphiql-assets")
    for asset in ASSETS:
        (directory / asset.name).write_text(f"/* {asset.package}@{asset.version} */\n")
    return directory


@pytest.fixture(scope="module")
def local_assets_server(settings: Settings, assets_dir: Path) -> Iterator[LiveServer]:
    server = LiveServer(
        dataclasses.replace(settings, graphiql=True, graphiql_assets_dir=assets_dir, db_pool_size=4)
    )
    server.start()
    yield server
    server.stop()


def test_the_page_opens_on_the_contract_top_markets_operation() -> None:
    contract = (ROOT / "tests" / "contract" / "operations" / "TopMarkets.graphql").read_text()
    assert EXAMPLE_OPERATION.strip() == contract.strip()
    for assets_url in (None, ASSETS_PATH):
        query = default_query(graphiql_html(assets_url))
        assert query == DEFAULT_QUERY
        assert query.rstrip().endswith(contract.strip())
        assert '"Authorization": "Bearer <the accessToken>"' in query


def test_without_local_assets_the_page_uses_the_pinned_cdn() -> None:
    page = graphiql_html(None)
    urls = references(page)
    assert urls == [
        f"https://unpkg.com/{a.package}@{a.version}/{a.path}" for a in ASSETS if not a.is_script
    ] + [f"https://unpkg.com/{a.package}@{a.version}/{a.path}" for a in ASSETS if a.is_script]
    for asset in ASSETS:
        assert f'integrity="{asset.integrity}"' in page


def test_with_local_assets_the_page_needs_no_other_host() -> None:
    page = graphiql_html(ASSETS_PATH)
    urls = references(page)
    assert sorted(urls) == sorted(f"{ASSETS_PATH}/{a.name}" for a in ASSETS)
    assert "unpkg.com" not in page
    assert "https://" not in page


def test_the_default_query_cannot_break_out_of_its_script() -> None:
    page = graphiql_html(None)
    script = page[page.rindex("<script>") :]
    assert script.count("</script>") == 1


async def test_the_server_serves_every_asset_its_page_references(
    local_assets_server: LiveServer, assets_dir: Path
) -> None:
    assets_url = local_assets_server.app.state.graphiql_assets_url
    assert assets_url == ASSETS_PATH
    async with httpx.AsyncClient(base_url=local_assets_server.url, timeout=30) as client:
        for url in references(graphiql_html(assets_url)):
            response = await client.get(url)
            assert response.status_code == 200, url
            assert response.text == (assets_dir / url.rsplit("/", 1)[1]).read_text()


async def test_a_directory_without_the_assets_falls_back_to_the_cdn(
    settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "graphiql.min.js").write_text("/* only one of them */")
    server = LiveServer(
        dataclasses.replace(settings, graphiql=True, graphiql_assets_dir=tmp_path, db_pool_size=2)
    )
    server.start()
    try:
        assert server.app.state.graphiql_assets_url is None
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            assert (await client.get(f"{ASSETS_PATH}/graphiql.min.js")).status_code == 404
    finally:
        server.stop()


async def test_the_endpoint_serves_this_page(local_assets_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=local_assets_server.url, timeout=30) as client:
        response = await client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert response.text == graphiql_html(ASSETS_PATH)

"""Trusted documents: ``marketgraph register-operations`` reads Apollo's and Relay's
manifests, and with ``TRUSTED_DOCUMENTS=required`` only registered documents run."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.settings import Settings
from tests.api.caching import CacheClient, cache_server, cached_settings
from tests.serving import command_env
from tests.support import MakeAccount, promote

MARKETGRAPH = str(Path(sys.executable).with_name("marketgraph"))
GRAPHQL_RESPONSE = "application/graphql-response+json"


def register(settings: Settings, tmp_path: Path, manifest: Any) -> subprocess.CompletedProcess[str]:
    path = tmp_path / f"manifest-{uuid.uuid4().hex[:6]}.json"
    path.write_bytes(manifest if isinstance(manifest, bytes) else orjson.dumps(manifest))
    env = command_env(
        tmp_path,
        DATABASE_URL=settings.database_url,
        JWT_SECRET=settings.jwt_secret,
        MARKETGRAPH_ENV="development",
    )
    return subprocess.run(
        [MARKETGRAPH, "register-operations", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def relay_id(body: str) -> str:
    # relay-compiler's local persistence names documents by the MD5 of their text.
    return hashlib.md5(body.encode()).hexdigest()


def sha(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass
class Registered:
    """Documents registered for this module: one from a Relay manifest, one from Apollo's."""

    relay_body: str
    relay_id: str
    apollo_body: str
    apollo_id: str


@pytest.fixture(scope="module")
def registered(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Registered:
    tmp_path = tmp_path_factory.mktemp("manifests")
    token = uuid.uuid4().hex[:8]
    relay_body = (
        f"query TrustedMarkets_{token}($first: Int) {{ markets(first: $first) {{ totalCount }} }}"
    )
    apollo_body = f"query TrustedViewer_{token} {{ viewer {{ id }} }}"
    done = register(settings, tmp_path, {relay_id(relay_body): relay_body})
    assert done.returncode == 0, done.stderr
    assert "registered 1 new" in done.stderr
    apollo = {
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [
            {"id": sha(apollo_body), "name": "TrustedViewer", "type": "query", "body": apollo_body}
        ],
    }
    done = register(settings, tmp_path, apollo)
    assert done.returncode == 0, done.stderr
    # Registering the same manifest again changes nothing.
    again = register(settings, tmp_path, apollo)
    assert again.returncode == 0, again.stderr
    assert "registered 0 new" in again.stderr
    return Registered(relay_body, relay_id(relay_body), apollo_body, sha(apollo_body))


@pytest.fixture(scope="module")
async def strict(settings: Settings, registered: Registered) -> AsyncIterator[CacheClient]:
    async with cache_server(cached_settings(settings, trusted_documents="required")) as client:
        yield client


@pytest.fixture(scope="module")
async def strict_but_admins(
    settings: Settings, registered: Registered
) -> AsyncIterator[CacheClient]:
    tuned = cached_settings(settings, trusted_documents="required", trusted_documents_admin=True)
    async with cache_server(tuned) as client:
        yield client


async def post(client: CacheClient, body: dict[str, Any], **headers: str) -> httpx.Response:
    return await client.http.post("/graphql", json=body, headers=headers)


def code(response: httpx.Response) -> str:
    return str(response.json()["errors"][0]["extensions"]["code"])


async def test_an_unregistered_document_is_refused_before_it_is_read(strict: CacheClient) -> None:
    documents = strict.server.app.state.documents
    prepared = documents.prepared
    query = f"query {{ markets {{ totalCount }} }} # {uuid.uuid4().hex}"
    response = await post(strict, {"query": query})
    assert response.status_code == 200
    assert code(response) == "DOCUMENT_NOT_TRUSTED"
    assert "data" not in response.json()
    assert (await post(strict, {"query": query}, Accept=GRAPHQL_RESPONSE)).status_code == 400
    assert documents.prepared == prepared, "a refused document is never parsed"


async def test_a_registered_relay_document_runs_by_its_id(
    strict: CacheClient, registered: Registered
) -> None:
    for body in (
        {"doc_id": registered.relay_id, "variables": {"first": 2}},
        {"documentId": registered.relay_id, "variables": {"first": 2}},
        {"documentId": f"sha256:{sha(registered.relay_body)}", "variables": {"first": 2}},
    ):
        response = await post(strict, body)
        assert response.status_code == 200, response.text
        assert response.json()["data"]["markets"]["totalCount"] >= 0
    got = await strict.http.get("/graphql", params={"doc_id": registered.relay_id})
    assert got.status_code == 200
    assert "markets" in got.json()["data"]


async def test_a_registered_document_runs_by_its_text_or_apq_hash(
    strict: CacheClient, registered: Registered
) -> None:
    by_text = await post(strict, {"query": registered.apollo_body})
    assert by_text.json()["data"] == {"viewer": None}
    by_hash = await post(
        strict,
        {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": registered.apollo_id}}},
    )
    assert by_hash.json()["data"] == {"viewer": None}


async def test_apq_cannot_register_what_is_not_trusted(strict: CacheClient) -> None:
    query = f"query {{ markets {{ totalCount }} }} # {uuid.uuid4().hex}"
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": sha(query)}}
    assert code(await post(strict, {"query": query, "extensions": extensions})) == (
        "DOCUMENT_NOT_TRUSTED"
    )
    assert code(await post(strict, {"extensions": extensions})) == "PERSISTED_QUERY_NOT_FOUND"


async def test_an_unknown_id_is_not_found(strict: CacheClient) -> None:
    response = await post(strict, {"doc_id": "no-such-document"})
    assert code(response) == "PERSISTED_QUERY_NOT_FOUND"


async def test_registered_documents_are_prepared_once(
    strict: CacheClient, registered: Registered
) -> None:
    documents = strict.server.app.state.documents
    prepared = documents.prepared
    for _ in range(3):
        response = await post(strict, {"doc_id": registered.relay_id, "variables": {"first": 1}})
        assert response.status_code == 200
        response = await post(strict, {"query": registered.apollo_body})
        assert response.status_code == 200
    assert documents.prepared == prepared


async def test_admins_may_run_any_document_when_allowed(
    strict_but_admins: CacheClient, db: AsyncEngine, make_account: MakeAccount
) -> None:
    # Signed up through the shared server (here sign-up is no registered document either).
    admin = await make_account("Admin")
    await promote(db, admin, "ADMIN")
    user = await make_account("User")
    query = f"query {{ markets {{ totalCount }} }} # {uuid.uuid4().hex}"
    allowed = await strict_but_admins.http.post(
        "/graphql", json={"query": query}, headers={"Authorization": f"Bearer {admin.token}"}
    )
    assert allowed.json()["data"]["markets"]["totalCount"] >= 0
    for token in (user.token, None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        refused = await strict_but_admins.http.post(
            "/graphql", json={"query": query}, headers=headers
        )
        assert code(refused) == "DOCUMENT_NOT_TRUSTED"


async def test_without_the_requirement_registered_ids_still_work(
    settings: Settings, registered: Registered
) -> None:
    async with cache_server(cached_settings(settings)) as client:
        by_id = await post(client, {"doc_id": registered.relay_id, "variables": {"first": 1}})
        assert by_id.json()["data"]["markets"]["totalCount"] >= 0
        anything = await post(client, {"query": "{ markets { totalCount } }"})
        assert anything.json()["data"]["markets"]["totalCount"] >= 0


# --- the command -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("manifest", "says"),
    [
        (b"not json", "not JSON"),
        ([1, 2], "expected a JSON object"),
        ({"format": "apollo-persisted-query-manifest", "version": 2}, "version 1"),
        (
            {
                "format": "apollo-persisted-query-manifest",
                "version": 1,
                "operations": [{"id": "0" * 64, "name": "X", "body": "{ viewer { id } }"}],
            },
            "not the SHA-256 of its body",
        ),
        ({"abc": "{ markets { nope } }"}, "Cannot query field 'nope'"),
        ({"abc": "{ markets { "}, "Syntax Error"),
        ({"abc": 5}, "maps ids to document texts"),
    ],
    ids=["json", "object", "apollo-version", "apollo-hash", "invalid", "syntax", "relay-shape"],
)
def test_a_bad_manifest_registers_nothing_and_says_why(
    settings: Settings, tmp_path: Path, manifest: Any, says: str
) -> None:
    done = register(settings, tmp_path, manifest)
    assert done.returncode == 2
    assert says in done.stderr
    assert done.stderr.startswith("marketgraph: register-operations:")


def test_an_id_taken_by_another_document_is_refused(settings: Settings, tmp_path: Path) -> None:
    ident = f"taken-{uuid.uuid4().hex[:8]}"
    first = register(settings, tmp_path, {ident: "query A { viewer { id } }"})
    assert first.returncode == 0, first.stderr
    clash = register(
        settings, tmp_path, {ident: "query B { viewer { id } }", "fresh-one": "{ viewer { id } }"}
    )
    assert clash.returncode == 2
    assert f"'{ident}' is registered already" in clash.stderr
    # All or nothing: the other document of the clashing manifest was not registered.
    retry = register(settings, tmp_path, {"fresh-one": "{ viewer { id } }"})
    assert "registered 1 new" in retry.stderr


def test_a_manifest_that_is_not_there_is_named(settings: Settings, tmp_path: Path) -> None:
    env = command_env(tmp_path, DATABASE_URL=settings.database_url, JWT_SECRET=settings.jwt_secret)
    done = subprocess.run(
        [MARKETGRAPH, "register-operations", str(tmp_path / "missing.json")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "cannot read" in done.stderr

"""Persisted documents: Apollo's automatic persisted queries (APQ) and trusted documents.

A request names its document in one of three ways:

* ``query``: the text. With ``extensions.persistedQuery.sha256Hash`` as well
  it registers the text for APQ, and the hash must be the text's SHA-256
  (``PERSISTED_QUERY_HASH_MISMATCH`` otherwise).
* ``extensions.persistedQuery`` alone: the text registered under the hash, a
  trusted document's or an APQ's. Unknown: ``PERSISTED_QUERY_NOT_FOUND``, and
  Apollo's link sends the text with the hash; with APQ off,
  ``PERSISTED_QUERY_NOT_SUPPORTED``, and the link stops sending hashes.
* ``documentId`` (or Relay's ``doc_id``): a trusted document, by the id its
  manifest gave it (``sha256:<hex>`` works for any of them).

Trusted documents are registered with ``marketgraph register-operations`` and
loaded, parsed, validated and analysed once when the server starts (new ones
are picked up when an unknown id or hash arrives, at most every few seconds).
With ``TRUSTED_DOCUMENTS=required`` nothing else runs: any other text is
refused with ``DOCUMENT_NOT_TRUSTED`` before it is parsed, and APQ cannot
register new texts; with ``TRUSTED_DOCUMENTS_ADMIN=true`` a signed-in admin
may still send any document (GraphiQL, support).
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

import structlog
from graphql.error import GraphQLSyntaxError

from domain.entities import Role
from domain.errors import ErrorCode
from domain.policy import Actor
from domain.ports import PersistedQueries, TrustedDocument, TrustedDocuments
from graph.documents import DocumentRefused, Documents, Prepared

log = structlog.get_logger("marketgraph.persisted")

APQ_VERSION = 1
_SHA256 = re.compile(r"[0-9a-f]{64}")
# How often an unknown id may send the registry back to the database for new documents.
REFRESH_SECONDS = 5.0
# Texts recently fetched by hash; a hash always names the same text, so they never go stale.
LOCAL_ENTRIES = 2_048
LOCAL_CHARS = 4_000_000
# A registered document's id (the column's width).
MAX_ID_CHARS = 200


class TrustMode(enum.StrEnum):
    OFF = "off"
    REQUIRED = "required"


class PersistedError(Exception):
    """The request's persisted document cannot be used; ``code`` says why."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Document:
    """The document a request stands for."""

    text: str
    sha256: str
    # A trusted document's, prepared when it was loaded; None for any other text.
    prepared: Prepared | None = None
    # Whether the text is to be kept for APQ once it has prepared without errors.
    register: bool = False

    @property
    def trusted(self) -> bool:
        return self.prepared is not None


def sha256_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class _Registered:
    document: TrustedDocument
    prepared: Prepared


class Registry:
    """The trusted documents in memory, each prepared once, by id and by SHA-256."""

    def __init__(
        self,
        source: TrustedDocuments | None,
        documents: Documents,
        refresh_seconds: float = REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        pin: Callable[[Prepared], None] | None = None,
    ) -> None:
        self._source = source
        self._documents = documents
        # Told of each document as it is registered (the compiled path plans it then, once).
        self._pin = pin
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._by_id: dict[str, _Registered] = {}
        self._by_sha: dict[str, _Registered] = {}
        self._loaded_at: float | None = None
        self._newest: datetime | None = None
        self._lock = asyncio.Lock()

    def __len__(self) -> int:
        return len(self._by_id)

    async def load(self) -> int:
        """Load every registered document (at start); how many are usable."""
        if self._source is None:
            return 0
        await self._add(await self._source.all())
        return len(self._by_id)

    def by_sha(self, sha256: str) -> _Registered | None:
        return self._by_sha.get(sha256)

    def by_id(self, ident: str) -> _Registered | None:
        found = self._by_id.get(ident)
        if found is None and ident.startswith("sha256:"):
            found = self._by_sha.get(ident.removeprefix("sha256:"))
        return found

    async def refreshed(self) -> bool:
        """Pick up documents registered since the last look, at most every few seconds;
        True when it looked."""
        if self._source is None:
            return False
        async with self._lock:
            now = self._clock()
            if self._loaded_at is not None and now - self._loaded_at < self._refresh_seconds:
                return False
            self._loaded_at = now
            found = (
                await self._source.all()
                if self._newest is None
                else await self._source.since(self._newest)
            )
            await self._add(found)
            return True

    async def _add(self, found: list[TrustedDocument]) -> None:
        if self._loaded_at is None:
            self._loaded_at = self._clock()
        for document in found:
            if document.id in self._by_id:
                continue
            if document.registered_at is not None and (
                self._newest is None or document.registered_at > self._newest
            ):
                self._newest = document.registered_at
            try:
                prepared = self._documents.prepare(document.body)
            except (GraphQLSyntaxError, DocumentRefused) as error:
                # Registered against an older schema or other limits: refused like any text.
                log.warning("trusted_document.unusable", id=document.id, error=str(error)[:200])
                continue
            if prepared.errors:
                log.warning(
                    "trusted_document.invalid",
                    id=document.id,
                    error=prepared.errors[0].message[:200],
                )
                continue
            registered = _Registered(document, prepared)
            if self._pin is not None:
                self._pin(prepared)
            self._by_id[document.id] = registered
            self._by_sha.setdefault(document.sha256, registered)


class PersistedDocuments:
    """Finds the document of each request: text, APQ hash or trusted document id."""

    def __init__(
        self,
        registry: Registry,
        apq: PersistedQueries | None,
        mode: TrustMode = TrustMode.OFF,
        admins_exempt: bool = False,
    ) -> None:
        self.registry = registry
        self._apq = apq
        self.mode = mode
        self._admins_exempt = admins_exempt
        self._local: OrderedDict[str, str] = OrderedDict()
        self._local_chars = 0
        # The SHA-256 of recently sent texts (the cache key needs it on every request).
        self._hashes: OrderedDict[str, str] = OrderedDict()

    @property
    def required(self) -> bool:
        return self.mode is TrustMode.REQUIRED

    async def document(
        self, query: str | None, document_id: str | None, extensions: Mapping[str, object]
    ) -> Document:
        """The request's document; raises ``PersistedError``, or ``ValueError`` for a
        malformed persisted-query extension (a bad request)."""
        persisted = extensions.get("persistedQuery")
        if persisted is not None:
            return await self._persisted(query, _hash_of(persisted))
        if document_id is not None:
            registered = self.registry.by_id(document_id)
            if registered is None and await self.registry.refreshed():
                registered = self.registry.by_id(document_id)
            if registered is None:
                raise PersistedError(
                    ErrorCode.PERSISTED_QUERY_NOT_FOUND,
                    f"No trusted document has the id '{document_id[:80]}'.",
                )
            return Document(
                registered.document.body, registered.document.sha256, registered.prepared
            )
        if query is None:
            raise ValueError(
                "Pass the document as 'query' (or a persisted query's hash, or 'documentId')."
            )
        sha = self._hash(query)
        registered = self.registry.by_sha(sha)
        return Document(query, sha, registered.prepared if registered else None)

    async def _persisted(self, query: str | None, sha: str) -> Document:
        registered = self.registry.by_sha(sha)
        if query is not None:
            if sha256_of(query) != sha:
                raise PersistedError(
                    ErrorCode.PERSISTED_QUERY_HASH_MISMATCH,
                    "provided sha does not match query",
                )
            if registered is not None:
                return Document(query, sha, registered.prepared)
            return Document(query, sha, register=self._apq is not None and not self.required)
        if registered is not None:
            return Document(registered.document.body, sha, registered.prepared)
        text = await self._stored(sha)
        if text is None and await self.registry.refreshed():
            registered = self.registry.by_sha(sha)
            if registered is not None:
                return Document(registered.document.body, sha, registered.prepared)
        if text is None:
            if self._apq is None:
                raise PersistedError(
                    ErrorCode.PERSISTED_QUERY_NOT_SUPPORTED, "PersistedQueryNotSupported"
                )
            raise PersistedError(ErrorCode.PERSISTED_QUERY_NOT_FOUND, "PersistedQueryNotFound")
        return Document(text, sha)

    async def _stored(self, sha: str) -> str | None:
        found = self._local.get(sha)
        if found is not None:
            self._local.move_to_end(sha)
            return found
        if self._apq is None:
            return None
        text = await self._apq.get(sha)
        # The store is trusted no further than its hashes.
        if text is None or sha256_of(text) != sha:
            return None
        self._remember_locally(sha, text)
        return text

    async def register(self, document: Document) -> None:
        """Keep an APQ text that prepared without errors."""
        if not document.register or self._apq is None:
            return
        self._remember_locally(document.sha256, document.text)
        await self._apq.put(document.sha256, document.text)

    def admitted(self, document: Document, actor: Actor | None) -> bool:
        """Whether the document may run: always, unless only trusted documents may."""
        if not self.required or document.trusted:
            return True
        return self._admins_exempt and actor is not None and actor.role is Role.ADMIN

    @property
    def admins_exempt(self) -> bool:
        return self._admins_exempt

    def _hash(self, query: str) -> str:
        found = self._hashes.get(query)
        if found is None:
            found = self._hashes[query] = sha256_of(query)
            if len(self._hashes) > LOCAL_ENTRIES:
                self._hashes.popitem(last=False)
        return found

    def _remember_locally(self, sha: str, text: str) -> None:
        if sha in self._local:
            return
        self._local[sha] = text
        self._local_chars += len(text)
        while len(self._local) > LOCAL_ENTRIES or self._local_chars > LOCAL_CHARS:
            _, evicted = self._local.popitem(last=False)
            self._local_chars -= len(evicted)


def _hash_of(persisted: object) -> str:
    if not isinstance(persisted, Mapping):
        raise ValueError("'extensions.persistedQuery' must be an object.")
    if persisted.get("version") != APQ_VERSION:
        raise ValueError(f"Only version {APQ_VERSION} of persisted queries is supported.")
    sha = persisted.get("sha256Hash")
    if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
        raise ValueError(
            "'extensions.persistedQuery.sha256Hash' must be 64 lowercase hexadecimal digits."
        )
    return sha


# --- manifests (``marketgraph register-operations``) ----------------------------------------

APOLLO_FORMAT = "apollo-persisted-query-manifest"


class ManifestError(Exception):
    """The file is not a persisted-query manifest we read, or holds a bad entry."""


def parse_manifest(raw: bytes) -> list[TrustedDocument]:
    """The documents of an Apollo or a Relay persisted-query manifest.

    Apollo (``generate-persisted-query-manifest``): ``{"format":
    "apollo-persisted-query-manifest", "version": 1, "operations": [{"id", "name",
    "type", "body"}]}``, each id the SHA-256 of its body. Relay (``relay-compiler``
    with ``persistConfig``): ``{"<id>": "<document>", ...}``, ids of the compiler's
    choosing.
    """
    import orjson

    try:
        manifest = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise ManifestError(f"not JSON ({error})") from None
    if not isinstance(manifest, dict):
        raise ManifestError("expected a JSON object (an Apollo or a Relay manifest)")
    if "format" in manifest or "operations" in manifest:
        return _apollo(manifest)
    return _relay(manifest)


def _apollo(manifest: Mapping[str, object]) -> list[TrustedDocument]:
    if manifest.get("format") != APOLLO_FORMAT or manifest.get("version") != 1:
        raise ManifestError(f"an Apollo manifest has format '{APOLLO_FORMAT}' and version 1")
    operations = manifest.get("operations")
    if not isinstance(operations, list):
        raise ManifestError("an Apollo manifest lists its documents under 'operations'")
    documents = []
    for index, operation in enumerate(operations):
        if not isinstance(operation, Mapping):
            raise ManifestError(f"operations[{index}] is not an object")
        ident, body, name = operation.get("id"), operation.get("body"), operation.get("name")
        if not isinstance(ident, str) or not isinstance(body, str) or not body.strip():
            raise ManifestError(f"operations[{index}] needs a string 'id' and 'body'")
        if sha256_of(body) != ident:
            raise ManifestError(
                f"operations[{index}] ('{name}'): its id is not the SHA-256 of its body"
            )
        documents.append(
            TrustedDocument(ident, body, ident, name if isinstance(name, str) else None)
        )
    return documents


def _relay(manifest: Mapping[str, object]) -> list[TrustedDocument]:
    documents = []
    for ident, body in manifest.items():
        if not isinstance(body, str) or not body.strip():
            raise ManifestError(f"'{ident}': a Relay manifest maps ids to document texts")
        if not ident or len(ident) > MAX_ID_CHARS:
            raise ManifestError(f"'{ident[:80]}': ids are 1 to {MAX_ID_CHARS} characters")
        documents.append(TrustedDocument(ident, body, sha256_of(body), None))
    return documents

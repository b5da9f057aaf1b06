"""Cache hints, and the cache policy they give an operation.

The rules (README, "Caching and persisted queries"):

* A query's response may be kept for ``CACHE_MAX_AGE`` seconds (default 60)
  and shared by every viewer (``PUBLIC``), unless something it selects says
  otherwise. Writes invalidate what they change (``domain.changes``); the max
  age is the backstop.
* A field's hint (``FIELD_HINTS``), or else the hint of the type it returns
  (``TYPE_HINTS``; for an interface or a union, the strictest of its possible
  types), may lower the max age or make the response ``PRIVATE``: its answer
  depends on who asks, so it is kept per viewer (the user's id; every
  anonymous viewer is one viewer). A max age of 0 means never kept.
* A response's policy is the lowest max age over every field it selects,
  ``PRIVATE`` if any field is. Fields under ``@skip``/``@include`` count
  whether or not they are included. Mutations are never kept.

HTTP caches get ``Cache-Control: public`` only for a ``PUBLIC`` response that
carries nothing of its caller: with budgets on (``RATE_LIMITS``), every
response carries its caller's budget (``extensions.cost.throttleStatus``,
``RateLimit-*``), so every one is ``private`` to HTTP caches, while the
response cache still shares the data of ``PUBLIC`` ones.

Everything that depends on the viewer is ``PRIVATE`` or never kept: the
``viewer``, a user's email, balance, account state, permissions and ledger,
jobs (``job:read``), ``node``/``nodes`` (they may return any of those types),
positions and trades where ``POSITIONS_PUBLIC=false``, and ``rateLimit``
(never). So a ``PUBLIC`` entry never holds anything a permission could hide.

The policy is computed once per operation of a prepared document, in one walk
of the cost shape ``graph.analysis`` built: fragments are shared there, and
each shared set is folded once, so the walk is linear in the document.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

from graphql import GraphQLObjectType, GraphQLSchema, OperationType, is_abstract_type

from graph.analysis import CostField, CostSet, OperationFigures

DEFAULT_MAX_AGE = 60
POLICY_CACHE_SIZE = 1_024


class Scope(enum.StrEnum):
    """Who may be given a cached response: anyone, or only the viewer it was made for."""

    PUBLIC = "PUBLIC"
    PRIVATE = "PRIVATE"


@dataclass(frozen=True, slots=True)
class Hint:
    """A field's or type's rule: at most ``max_age`` seconds (None: no limit of its own),
    and whether the answer depends on the viewer."""

    max_age: int | None = None
    scope: Scope = Scope.PUBLIC

    def __and__(self, other: Hint) -> Hint:
        """The stricter of both: the lower max age, ``PRIVATE`` if either is."""
        if other.max_age is None:
            max_age = self.max_age
        elif self.max_age is None:
            max_age = other.max_age
        else:
            max_age = min(self.max_age, other.max_age)
        private = Scope.PRIVATE in (self.scope, other.scope)
        return Hint(max_age, Scope.PRIVATE if private else Scope.PUBLIC)


ANY = Hint()
PRIVATE = Hint(scope=Scope.PRIVATE)
NEVER = Hint(max_age=0)

FIELD_HINTS: Mapping[tuple[str, str], Hint] = {
    ("Query", "viewer"): PRIVATE,
    # Needs `job:read`: who may see it depends on the viewer's role.
    ("Query", "job"): PRIVATE,
    # The caller's own budget after this very request.
    ("Query", "rateLimit"): NEVER,
    ("User", "email"): PRIVATE,
    ("User", "balance"): PRIVATE,
    ("User", "disabled"): PRIVATE,
    ("User", "permissions"): PRIVATE,
    ("User", "ledger"): PRIVATE,
    # Its default range ends now: the window moves without any write.
    ("Market", "priceHistory"): Hint(max_age=60),
}
# Where positions are private (POSITIONS_PUBLIC=false), holdings and trades are the
# holder's: every path to them depends on the viewer.
PRIVATE_POSITION_HINTS: Mapping[tuple[str, str], Hint] = {
    ("Market", "positions"): PRIVATE,
    ("Market", "trades"): PRIVATE,
    ("User", "positions"): PRIVATE,
    ("User", "trades"): PRIVATE,
}
TYPE_HINTS: Mapping[str, Hint] = {
    "LedgerEntry": PRIVATE,
    "Job": PRIVATE,
}
PRIVATE_POSITION_TYPE_HINTS: Mapping[str, Hint] = {
    "Position": PRIVATE,
    "Trade": PRIVATE,
}


@dataclass(frozen=True, slots=True)
class Policy:
    """How long a response may be kept, and for whom; ``max_age`` 0: not at all."""

    max_age: int
    scope: Scope
    # The response also carries figures of its caller (the budget, with budgets on), which
    # an HTTP cache shared by several clients would hand to the next one: only the caller's
    # own (private) HTTP cache may keep it. The response cache keys by ``scope`` alone: what
    # it keeps is the data, and each hit writes its own caller's figures around it.
    per_caller: bool = False

    @property
    def cacheable(self) -> bool:
        return self.max_age > 0

    @property
    def private(self) -> bool:
        return self.scope is Scope.PRIVATE

    @property
    def http_shared(self) -> bool:
        """Whether ``Cache-Control`` may say ``public``."""
        return not self.private and not self.per_caller


UNCACHEABLE = Policy(0, Scope.PRIVATE)


class CacheHints:
    """The hints of one schema under one configuration, and the policies they give."""

    def __init__(
        self,
        schema: GraphQLSchema,
        *,
        positions_public: bool = True,
        default_max_age: int = DEFAULT_MAX_AGE,
        per_caller: bool = False,
    ) -> None:
        self.schema = schema
        self.default_max_age = default_max_age
        # Every response carries its caller's budget (RATE_LIMITS on): see ``Policy``.
        self.per_caller = per_caller
        self.fields: dict[tuple[str, str], Hint] = dict(FIELD_HINTS)
        self.types: dict[str, Hint] = dict(TYPE_HINTS)
        if not positions_public:
            self.fields.update(PRIVATE_POSITION_HINTS)
            self.types.update(PRIVATE_POSITION_TYPE_HINTS)
        self._type_memo: dict[str, Hint] = {}
        # Keyed by the operation's identity, holding the operation so the id stays its own.
        self._policies: OrderedDict[int, tuple[OperationFigures, Policy]] = OrderedDict()

    def type_hint(self, name: str) -> Hint:
        """A type's own hint; for an interface or union, the strictest of its possible types."""
        found = self._type_memo.get(name)
        if found is not None:
            return found
        hint = self.types.get(name, ANY)
        kind = self.schema.get_type(name)
        if kind is not None and is_abstract_type(kind):
            for possible in self.schema.get_possible_types(kind):
                hint = hint & self.types.get(possible.name, ANY)
        self._type_memo[name] = hint
        return hint

    def field_hint(self, item: CostField) -> Hint:
        """The field's hint, else its return type's."""
        own = self.fields.get((item.parent, item.name))
        if own is not None:
            return own
        return self.type_hint(item.returns) if item.returns else ANY

    def policy(self, operation: OperationFigures) -> Policy:
        """The operation's policy, computed on first use."""
        key = id(operation)
        found = self._policies.get(key)
        if found is not None:
            self._policies.move_to_end(key)
            return found[1]
        policy = self._compute(operation)
        self._policies[key] = (operation, policy)
        if len(self._policies) > POLICY_CACHE_SIZE:
            self._policies.popitem(last=False)
        return policy

    def _compute(self, operation: OperationFigures) -> Policy:
        if operation.kind is not OperationType.QUERY:
            return UNCACHEABLE
        hint = _Fold(self).set_hint(operation.cost)
        max_age = self.default_max_age if hint.max_age is None else hint.max_age
        return Policy(min(max_age, self.default_max_age), hint.scope, self.per_caller)

    def object_types(self) -> list[GraphQLObjectType]:
        return [t for t in self.schema.type_map.values() if isinstance(t, GraphQLObjectType)]


class _Fold:
    """One operation's hints folded over its cost shape, each shared set once."""

    def __init__(self, hints: CacheHints) -> None:
        self._hints = hints
        self._memo: dict[int, Hint] = {}

    def set_hint(self, cost: CostSet) -> Hint:
        key = id(cost)
        found = self._memo.get(key)
        if found is not None:
            return found
        # A cycle (validation refuses it) contributes nothing the second time round.
        self._memo[key] = ANY
        hint = ANY
        for member in cost.members:
            hint = hint & (
                self.set_hint(member) if isinstance(member, CostSet) else self._field(member)
            )
        for sets in cost.branches.values():
            for branch in sets:
                hint = hint & self.set_hint(branch)
        self._memo[key] = hint
        return hint

    def _field(self, item: CostField) -> Hint:
        hint = self._hints.field_hint(item)
        if item.sub is not None:
            hint = hint & self.set_hint(item.sub)
        return hint

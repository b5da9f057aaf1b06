"""What a committed write changed, named as cache tags.

The response cache (README, "Caching and persisted queries") records with each
cached response the tags of what it shows, and every committed unit of work
invalidates the tags of what it wrote. Both sides name things the same way,
here:

* an entity: ``Market:<uuid>`` (the kind is the object type's name);
* a list that belongs to an entity: ``Market:<uuid>/positions``, changed when
  an item joins or leaves it or its order changes (the items' own changes
  are their entity tags);
* a top-level list: ``markets``;
* wildcards, for a response that shows an entity or a list without saying
  whose (it did not select the ``id``): ``Market:*``, ``Market:*/positions``.

Invalidating a tag invalidates its wildcard too (``Changes.tags``), so a
response tagged ``Market:*`` is dropped whenever any market changes. That also lets
a response that shows many entities of a kind carry the kind's wildcard instead of
each of their tags (``coarsened``).
"""

from __future__ import annotations

import enum
from uuid import UUID


class Kind(enum.StrEnum):
    """The entities a response can show, by the name of their object type."""

    MARKET = "Market"
    USER = "User"
    POSITION = "Position"
    TRADE = "Trade"
    LEDGER_ENTRY = "LedgerEntry"
    JOB = "Job"


class Relation(enum.StrEnum):
    """Lists that belong to an entity (a market's positions, a user's trades)."""

    MARKETS = "markets"
    POSITIONS = "positions"
    TRADES = "trades"
    LEDGER = "ledger"


# Top-level lists.
MARKETS = "markets"
WILDCARD = "*"


def entity_tag(kind: Kind, ident: UUID | None) -> str:
    """The tag of one entity, or (``ident`` None) the wildcard of its kind."""
    return f"{kind.value}:{WILDCARD if ident is None else ident}"


def relation_tag(kind: Kind, ident: UUID | None, relation: Relation) -> str:
    """The tag of an entity's list, or (``ident`` None) that list of every entity of the kind."""
    return f"{entity_tag(kind, ident)}/{relation.value}"


def wildcard_of(tag: str) -> str | None:
    """``Market:*`` for ``Market:<uuid>``, ``Market:*/trades`` for ``Market:<uuid>/trades``;
    None for a top-level list or a wildcard."""
    kind, sep, rest = tag.partition(":")
    if not sep:
        return None
    ident, slash, relation = rest.partition("/")
    if ident == WILDCARD:
        return None
    return f"{kind}:{WILDCARD}{slash}{relation}"


def coarsened(tags: set[str], most: int) -> set[str]:
    """``tags`` with each group of more than ``most`` tags under one wildcard replaced by the
    wildcard. Never a stale read: every change invalidates its wildcard too (``Changes.tags``).
    """
    groups: dict[str, list[str]] = {}
    for tag in tags:
        wildcard = wildcard_of(tag)
        if wildcard is not None:
            groups.setdefault(wildcard, []).append(tag)
    wide = [(wildcard, members) for wildcard, members in groups.items() if len(members) > most]
    if not wide:
        return tags
    kept = set(tags)
    for wildcard, members in wide:
        kept.difference_update(members)
        kept.add(wildcard)
    return kept


class Changes:
    """The tags a unit of work's writes changed, collected as its repositories write.

    Read (``tags``) once the transaction has committed; a rolled-back unit of
    work's changes are simply dropped with it.
    """

    def __init__(self) -> None:
        self._tags: set[str] = set()

    def entity(self, kind: Kind, ident: UUID) -> None:
        self._tags.add(entity_tag(kind, ident))

    def relation(self, kind: Kind, ident: UUID, relation: Relation) -> None:
        self._tags.add(relation_tag(kind, ident, relation))

    def listing(self, name: str) -> None:
        self._tags.add(name)

    def tags(self) -> frozenset[str]:
        """Every tag changed, with the wildcards that cover them."""
        wildcards = {wildcard_of(tag) for tag in self._tags}
        return frozenset(self._tags | {tag for tag in wildcards if tag is not None})

    def clear(self) -> None:
        self._tags.clear()

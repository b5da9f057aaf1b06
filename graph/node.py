"""The Relay ``Node`` interface."""

from __future__ import annotations

import strawberry


@strawberry.interface(description="An object with a globally unique, opaque id.")
class Node:
    id: strawberry.ID = strawberry.field(
        description="Opaque global id; pass it to `node(id:)` to fetch the object again."
    )

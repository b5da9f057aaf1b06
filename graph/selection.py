"""What a query asks for below the current field, so resolvers can fetch it ahead."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from strawberry.types import Info
from strawberry.types.nodes import SelectedField, Selection


def _reaches(selections: Iterable[Selection], path: tuple[str, ...]) -> bool:
    head, rest = path[0], path[1:]
    for selection in selections:
        if isinstance(selection, SelectedField):
            if selection.name == head and (not rest or _reaches(selection.selections, rest)):
                return True
        elif _reaches(selection.selections, path):  # a fragment: look through it
            return True
    return False


def items_select(info: Info[Any, Any], field: str) -> bool:
    """Whether a connection's items (``nodes`` or ``edges.node``) select ``field``.

    Directives are not evaluated, so a field under ``@skip`` still counts: the
    worst case is fetching something that is then not shown.
    """
    selections = [s for current in info.selected_fields for s in current.selections]
    return _reaches(selections, ("nodes", field)) or _reaches(selections, ("edges", "node", field))

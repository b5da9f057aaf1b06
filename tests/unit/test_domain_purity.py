"""domain/ imports no framework and no other layer (docs/architecture.md, Layers).

The build fails if it does.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[2] / "domain"
FORBIDDEN = frozenset(
    {
        "strawberry",
        "starlette",
        "sqlalchemy",
        "redis",
        "jwt",
        "argon2",
        "alembic",
        "asyncpg",
        "aiosqlite",
        "uvicorn",
        "structlog",
        "orjson",
        "aiodataloader",
        "graphql",
        "saq",
        "httpx",
        "prometheus_client",
        "graph",
        "infra",
    }
)
_DYNAMIC_IMPORTS = frozenset({"import_module", "__import__"})


def forbidden_imports(source: str, filename: str = "<snippet>") -> list[str]:
    """Every import of a forbidden top-level package in ``source``, as ``line: name``.

    Imports count wherever they stand (inside functions, ``if TYPE_CHECKING:``
    blocks, ``try``), and so do ``importlib.import_module("x")`` and
    ``__import__("x")`` with a literal name.
    """
    found: list[str] = []

    def check(node: ast.AST, module: str) -> None:
        if module.split(".")[0] in FORBIDDEN:
            found.append(f"{filename}:{getattr(node, 'lineno', 0)}: {module}")

    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                check(node, alias.name)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            check(node, node.module)
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in _DYNAMIC_IMPORTS and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    check(node, first.value)
    return found


def domain_sources() -> list[Path]:
    return sorted(DOMAIN.rglob("*.py"))


def test_the_domain_package_is_where_the_check_looks() -> None:
    sources = {path.relative_to(DOMAIN).as_posix() for path in domain_sources()}
    # Guards against a moved folder turning the check below into a check of nothing.
    assert {"entities.py", "pricing.py", "validation.py", "services/markets.py"} <= sources


@pytest.mark.parametrize(
    "path", domain_sources(), ids=lambda path: path.relative_to(DOMAIN).as_posix()
)
def test_domain_module_imports_no_framework(path: Path) -> None:
    assert forbidden_imports(path.read_text(encoding="utf-8"), str(path)) == []


@pytest.mark.parametrize(
    "snippet",
    [
        "import sqlalchemy",
        "import sqlalchemy.ext.asyncio as sa_async",
        "from sqlalchemy import select",
        "import os, strawberry",
        "from starlette.requests import Request",
        "import jwt",
        "from argon2 import PasswordHasher",
        "import redis.asyncio",
        "from graph.ids import to_global_id",
        "import infra.settings",
        "from infra import settings",
        "def later():\n    import orjson\n",
        "if TYPE_CHECKING:\n    from infra.db.models import users\n",
        "try:\n    import uvicorn\nexcept ImportError:\n    pass\n",
        "import importlib\nimportlib.import_module('structlog')",
        "__import__('aiodataloader')",
        "from alembic import op",
        "import asyncpg",
        "import aiosqlite",
    ],
)
def test_the_check_catches_a_forbidden_import(snippet: str) -> None:
    assert len(forbidden_imports(snippet)) == 1


@pytest.mark.parametrize(
    "snippet",
    [
        "from __future__ import annotations",
        "import decimal\nfrom datetime import UTC, datetime",
        "from domain.entities import Market",
        "from . import errors\nfrom .money import QUANTUM",
        "import graphlib",
        "import infrastructure_notes",
        "import importlib\nimportlib.import_module(name)",
    ],
)
def test_the_check_allows_the_standard_library_and_the_domain_itself(snippet: str) -> None:
    assert forbidden_imports(snippet) == []

"""graph/ reaches infra/ only through the composition roots (docs/architecture.md, Layers).

The GraphQL layer talks to the database, Redis and tokens through the ports of
domain/ports.py; only the modules that build the process (the app, the CLI and
the worker) may import infra/ to pass the real adapters in.
"""

from __future__ import annotations

import ast
from pathlib import Path

GRAPH = Path(__file__).resolve().parents[2] / "graph"
COMPOSITION_ROOTS = frozenset({"app.py", "cli.py", "worker.py"})


def infra_imports(source: str, filename: str = "<snippet>") -> list[str]:
    """Every import of infra in ``source``, wherever it stands, as ``file:line: module``."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        line = getattr(node, "lineno", 0)
        found.extend(f"{filename}:{line}: {m}" for m in modules if m.split(".")[0] == "infra")
    return found


def test_only_the_composition_roots_import_infra() -> None:
    checked = 0
    offenders: list[str] = []
    for path in sorted(GRAPH.rglob("*.py")):
        checked += 1
        if path.parent == GRAPH and path.name in COMPOSITION_ROOTS:
            continue
        offenders.extend(infra_imports(path.read_text(), str(path.relative_to(GRAPH.parent))))
    assert checked > 20, "the graph package was not found"
    assert offenders == []


def test_the_guard_sees_every_form_of_import() -> None:
    source = (
        "import infra.db\n"
        "from infra.tokens import JwtTokens\n"
        "def late():\n    from infra.redis import create_redis\n"
        "import domain.ports\n"
        "from graph.errors import ApiError\n"
    )
    assert [line.split(": ")[1] for line in infra_imports(source)] == [
        "infra.db",
        "infra.tokens",
        "infra.redis",
    ]

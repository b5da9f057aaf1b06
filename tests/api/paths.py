"""Which path answered each operation: the per-operation log line says (``"path"``).

Statement counts are no proof that the compiled path answered: statements are counted
before they run, and a compiled statement PostgreSQL refuses falls back to the
resolvers. The log line is written once the answer is made.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
import pytest

LOGGER = "marketgraph.http"


@contextmanager
def recorded(caplog: pytest.LogCaptureFixture) -> Iterator[list[str]]:
    """The paths of the operations answered inside the block, in order (filled on exit)."""
    caplog.clear()
    paths: list[str] = []
    with caplog.at_level(logging.INFO, logger=LOGGER):
        yield paths
    for record in caplog.records:
        if record.name == LOGGER:
            line = orjson.loads(record.getMessage())
            if line.get("event") == "graphql.operation":
                paths.append(line["path"])

"""The project's documents stand alone: every link they make stays inside the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#+ (.+)$", re.M)


def anchors(text: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    return {
        re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        for heading in HEADING.findall(text)
    }


def test_there_are_documents() -> None:
    assert {p.name for p in DOCUMENTS} >= {"README.md", "CHANGELOG.md", "architecture.md"}


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_links_stay_in_the_repository(document: Path) -> None:
    text = document.read_text()
    for target in LINK.findall(text):
        assert not target.startswith(("http://", "https://", "//")), f"{document.name}: {target}"
        path, _, anchor = target.partition("#")
        if not path:
            assert anchor in anchors(text), f"{document.name}: no heading for #{anchor}"
            continue
        resolved = (document.parent / path).resolve()
        assert resolved.is_relative_to(ROOT), f"{document.name}: {target} leaves the repository"
        assert resolved.exists(), f"{document.name}: {target} does not exist"

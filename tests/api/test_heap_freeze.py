"""``marketgraph serve``'s processes move what they built at start out of the garbage
collector's sight once started, and collect their young generation less often; apps made
any other way (tests, tools) leave the collector as it was."""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Iterator

import pytest

from graph.app import YOUNG_COLLECTION_THRESHOLD, create_app
from infra.settings import Settings


def quiet(settings: Settings) -> Settings:
    """No in-process job runner: these apps start and stop outside a server."""
    return dataclasses.replace(settings, jobs_in_process=False)


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Each test starts and ends with nothing frozen (frozen objects are never freed) and
    with the collector's thresholds as they were."""
    thresholds = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


async def test_a_started_serving_app_freezes_its_startup_heap(
    settings: Settings, unfrozen: None
) -> None:
    app = create_app(quiet(settings), freeze_startup_heap=True)
    assert gc.get_freeze_count() == 0
    async with app.router.lifespan_context(app):
        # Everything alive once started: the schema alone is tens of thousands of objects.
        assert gc.get_freeze_count() > 50_000
        assert gc.get_threshold()[0] == YOUNG_COLLECTION_THRESHOLD != 700


async def test_other_apps_leave_the_collector_alone(settings: Settings, unfrozen: None) -> None:
    thresholds = gc.get_threshold()
    app = create_app(quiet(settings))
    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() == 0
        assert gc.get_threshold() == thresholds


def test_the_serve_factory_asks_for_the_freeze(monkeypatch: pytest.MonkeyPatch) -> None:
    import graph.app

    asked: list[bool] = []

    def recording(_settings: Settings, *, freeze_startup_heap: bool = False) -> object:
        asked.append(freeze_startup_heap)
        return object()

    monkeypatch.setattr(graph.app, "create_app", recording)
    monkeypatch.setattr(Settings, "from_env", classmethod(lambda cls: None))
    graph.app.create_app_from_env()
    assert asked == [True]

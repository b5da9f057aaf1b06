"""The test server's statement counter counts what requests send, not the scheduled ticks
that run in the same process (a count straddling a minute's tick came out one too many)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import httpx
from sqlalchemy import event

from infra.settings import Settings
from tests.support import LiveServer


async def test_scheduled_ticks_are_not_counted_and_requests_are(settings: Settings) -> None:
    # A queue of its own: the session's queue still holds the next minute's tick, left by
    # earlier live servers, and saq enqueues no second job under that cron key.
    live = LiveServer(
        dataclasses.replace(
            settings, market_close_cron="* * * * * *", job_queue=f"{settings.job_queue}:ticks"
        )
    )
    everything: list[str] = []

    @event.listens_for(live.app.state.engine.sync_engine, "before_cursor_execute")
    def _all(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        everything.append(statement)

    live.start()
    try:
        live.sql.reset()
        everything.clear()
        deadline = time.monotonic() + 15
        while not everything:  # a tick each second, and nothing else runs
            assert time.monotonic() < deadline, "no scheduled tick ran"
            await asyncio.sleep(0.1)
        assert live.sql.count == 0, live.sql.statements
        async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
            response = await http.post(
                "/graphql", json={"query": "{ markets(first: 1) { totalCount } }"}
            )
        assert response.status_code == 200
        assert live.sql.count >= 1
    finally:
        live.stop()

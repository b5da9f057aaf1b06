"""A TCP proxy in front of a test's own redis-server that counts the commands sent to it.

The fault tests count the Redis calls a request makes while Redis is stalled or gone,
rather than timing the requests. Commands and replies are counted by parsing both
streams (hiredis reads a command, an array of bulk strings, as it reads a reply): the
request path's connections carry many callers' commands at once (``infra.redis_wire``),
so neither a read nor a reply marks where one command ends. When the server is frozen
no reply comes, so every command sent from then on is one that fails.

It runs on an event loop of its own in a thread: the test's loop blocks while a live
server starts, and the server talks to Redis as it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

import hiredis


class _Connection:
    """What went through one client connection: commands sent, replies received."""

    def __init__(self) -> None:
        self.sent = 0
        self.answered = 0
        self.requests = hiredis.Reader()
        self.replies = hiredis.Reader()

    @staticmethod
    def count(reader: hiredis.Reader, data: bytes) -> int:
        reader.feed(data)
        found = 0
        while reader.gets() is not False:
            found += 1
        return found


class CountingProxy:
    def __init__(self, upstream_port: int) -> None:
        self._upstream = upstream_port
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop
        self._thread: threading.Thread
        self.commands = 0
        self.port = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def awaiting(self) -> int:
        """Commands sent and not answered yet, over every connection."""
        return sum(c.sent - c.answered for c in self._connections)

    def start(self) -> None:
        started = threading.Event()
        loop = self._loop = asyncio.new_event_loop()

        async def listen() -> None:
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]
            started.set()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(listen())
            loop.run_forever()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        assert started.wait(timeout=10), "the Redis proxy did not start"

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(self._relay(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _relay(self, client: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
        connection = _Connection()
        try:
            server, to_server = await asyncio.open_connection("127.0.0.1", self._upstream)
        except OSError:
            to_client.close()
            return
        self._connections.add(connection)

        async def requests() -> None:
            while data := await client.read(65_536):
                sent = connection.count(connection.requests, data)
                connection.sent += sent
                self.commands += sent
                to_server.write(data)
                await to_server.drain()

        async def replies() -> None:
            while data := await server.read(65_536):
                connection.answered += connection.count(connection.replies, data)
                to_client.write(data)
                await to_client.drain()

        directions = [asyncio.ensure_future(requests()), asyncio.ensure_future(replies())]
        try:
            await asyncio.wait(directions, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for direction in directions:
                direction.cancel()
            await asyncio.gather(*directions, return_exceptions=True)
            self._connections.discard(connection)
            for writer in (to_server, to_client):
                writer.close()

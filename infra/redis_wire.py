"""One multiplexed Redis connection for the request path's hot commands.

Why: a response-cache hit paid about 335 µs of server CPU, and each of its two
redis-py asyncio commands (an MGET, an EVALSHA) cost 80-95 µs of Python CPU:
taking and returning a pooled connection, its readiness checks, an
``asyncio.timeout`` per command, a parser written in Python. Here every
concurrent caller of a process's event loop shares one connection: a command
is packed by hiredis' C packer and queued (no lock, no pool), the commands of
one turn of the loop leave in one write at its end (under load a system call
per command cost as much as the rest of it), and replies, which Redis sends in
the order the commands arrived, are parsed by hiredis' C reader and handed to
the callers in that same order (FIFO). It costs a few µs per command
(bench/redis_wire.py measures it).

Settings come from the incidents recorded in ``infra/redis.py``, and keep their
answers:

- A stalled Redis froze requests for a minute behind redis-py's long timeouts
  and retries. Here a command has ``SOCKET_TIMEOUT`` to be answered and is
  never retried: a failed command fails, and the caller's ``RedisBreaker``
  decides what that means. There is no timer per command: replies come in
  order, so the oldest command waiting is always the first in line, and one
  watchdog timer follows that head. When the head is overdue the connection is
  declared stalled: every command waiting on it fails with ``TimeoutError``
  and the connection is dropped, so a late reply can never reach a caller it
  was not meant for. The next call opens a new connection.
- A busy event loop runs late by itself (150 ms under a burst of sign-ins), and
  a timeout measured on its clock fired on replies that had arrived but were
  not read yet. Before the watchdog declares a stall it lets the loop take one
  more turn through its I/O, so a reply sitting unread in the socket is read
  first, and only a head still unanswered after that fails.
- Running out of pooled connections is back-pressure, not an outage. The one
  connection here never runs out, but the commands waiting on it are bounded
  (``max_pending``): beyond the bound ``call`` raises ``RedisBusy``, which no
  breaker counts as a failure.

Errors keep redis-py's classes, so ``infra.redis.is_outage`` reads them the
same way: an error reply is turned into an exception by redis-py's own table
(``READONLY`` is ``ReadOnlyError``, ``NOSCRIPT`` is ``NoScriptError``,
``LOADING`` is ``BusyLoadingError``...), a refused, reset or closed connection
is ``ConnectionError``, an unanswered command ``TimeoutError``.

Trade-offs, accepted knowingly:

- Head-of-line blocking: a slow command delays every command behind it on the
  connection. Redis executes commands one at a time anyway, so a slow script
  blocks every connection of every client alike; what one connection adds is
  only the time to move the slow command's reply, which is why this is for
  small, fast commands (cache entries, budget scripts), not bulk transfers.
- One stall fails every command waiting, not only the overdue one: nothing
  that was sent on a connection that stopped answering can be trusted to come
  back in order.
- Commands that change the connection's state or keep it talking (SUBSCRIBE,
  MONITOR, MULTI, SELECT, CLIENT REPLY, blocking pops) must not be sent
  here: they would desynchronise or block every other caller. Nothing checks
  this per command (it would cost every command); use redis-py for those.
- Replies are RESP2 values as hiredis gives them (``bytes``, ``int``, ``None``,
  lists), without redis-py's per-command conversions (SET answers ``b"OK"``,
  not ``True``).
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import ssl
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, cast

import hiredis
import structlog

# redis-py's own table from error replies to exception classes: the same reply is
# the same exception here as through redis-py, whatever redis-py's version maps.
from redis._parsers import BaseParser
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from infra.redis import CONNECT_TIMEOUT, SOCKET_TIMEOUT, RedisBusy
from infra.redis_url import RedisAddress

log = structlog.get_logger("marketgraph.redis")

Arg = str | bytes | int | float | memoryview
"""What a command's arguments may be (hiredis packs them; ``bool`` and ``None`` are refused)."""

# Commands a process may have waiting on its connection: far more than the requests it
# runs at once, each of which waits for one command at a time.
DEFAULT_MAX_PENDING = 1024
# Packed commands kept for reuse (``RedisWire._packed``), with their arguments: about 600
# bytes each (4,096 cache lookups held 2.4 MB, tracemalloc).
PACKED_MEMO_ENTRIES = 4096

# hiredis' stub types pack_command's argument as a 1-tuple; it takes any tuple of Args.
_pack: Callable[[tuple[Arg, ...]], bytes] = hiredis.pack_command  # type: ignore[assignment]
# What hiredis' reader answers while no complete reply is buffered.
_MORE: Final = object()
_Pending = tuple["asyncio.Future[Any]", float]


def _reply_error(message: str) -> RedisError:
    # redis-py leaves this classmethod unannotated.
    error: RedisError = BaseParser.parse_error(message)  # type: ignore[no-untyped-call]
    return error


class Script:
    """A Lua script run with ``RedisWire.evalsha``: its SHA-1 is computed here, once."""

    __slots__ = ("sha", "source")

    def __init__(self, source: str | bytes) -> None:
        self.source = source.encode() if isinstance(source, str) else source
        self.sha = hashlib.sha1(self.source, usedforsecurity=False).hexdigest()


class _Connection(asyncio.Protocol):
    """One connection's transport, reply parser and commands waiting, oldest first."""

    __slots__ = (
        "closed",
        "done",
        "loop",
        "on_closed",
        "outgoing",
        "pending",
        "reader",
        "timeout",
        "transport",
        "unheard",
        "watchdog",
        "writes",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        timeout: float,
        on_closed: Callable[[_Connection], None],
    ) -> None:
        self.loop = loop
        self.timeout = timeout
        self.on_closed = on_closed
        self.reader = hiredis.Reader(replyError=_reply_error, notEnoughData=_MORE)
        self.pending: deque[_Pending] = deque()
        self.transport: asyncio.Transport
        self.watchdog: asyncio.Handle | None = None
        self.closed = False
        # Commands packed this turn of the loop, written together at its end (``flush``).
        self.outgoing: list[bytes] = []
        self.writes = 0
        # Resolved once the transport is gone (connection_lost).
        self.done: asyncio.Future[None] = loop.create_future()
        # Stands in the queue for the reply to a command nobody waits for (``RedisWire.tell``):
        # already done, so that reply is read and dropped like a cancelled caller's.
        self.unheard: asyncio.Future[Any] = loop.create_future()
        self.unheard.cancel()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (TCP, TLS or a unix socket), whichever loop made it.
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # Small commands must leave at once, not wait for Nagle's algorithm.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        reader = self.reader
        reader.feed(data)
        pending = self.pending
        while True:
            try:
                reply = reader.gets()
            except hiredis.ProtocolError as error:
                self.shut(RedisConnectionError, f"Redis sent a malformed reply: {error}")
                return
            if reply is _MORE:
                return
            if not pending:
                self.shut(RedisConnectionError, "Redis sent a reply nobody asked for")
                return
            future = pending.popleft()[0]
            # A caller cancelled while waiting has its reply read and dropped here.
            if not future.done():
                if isinstance(reply, RedisError):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)

    def eof_received(self) -> bool:
        return False  # close the transport: connection_lost fails what is waiting

    def connection_lost(self, exc: Exception | None) -> None:
        detail = f": {exc}" if exc is not None else ""
        self.shut(RedisConnectionError, f"Connection to Redis lost{detail}")
        if not self.done.done():
            self.done.set_result(None)

    # Sending

    def send(self, packed: bytes, count: int) -> list[asyncio.Future[Any]]:
        """Write ``count`` packed commands in one write; a future per reply. Raises
        ConnectionError."""
        self.ensure_open()
        self.write(packed)
        deadline = self.loop.time() + self.timeout
        futures = [self.loop.create_future() for _ in range(count)]
        self.pending.extend([(future, deadline) for future in futures])
        if self.watchdog is None:
            self.arm()
        return futures

    def ensure_open(self) -> None:
        """Raise ConnectionError if this connection is closed: nothing sent would be answered."""
        if self.closed:
            raise RedisConnectionError("Connection to Redis lost")

    def write(self, packed: bytes) -> None:
        """Queue ``packed`` for this turn's one write (``flush``)."""
        outgoing = self.outgoing
        if not outgoing:
            self.loop.call_soon(self.flush)
        outgoing.append(packed)

    def flush(self) -> None:
        """Write the commands of this turn of the loop in one system call: under load many
        requests send theirs in the same turn, and a write each was most of their cost."""
        outgoing, self.outgoing = self.outgoing, []
        if self.closed or not outgoing:
            return
        self.writes += 1
        try:
            self.transport.write(outgoing[0] if len(outgoing) == 1 else b"".join(outgoing))
        except Exception as error:  # a transport closing under us (uvloop raises)
            self.shut(RedisConnectionError, f"Connection to Redis lost: {error}")

    # The watchdog: one timer, following the oldest command waiting.

    def arm(self) -> None:
        self.watchdog = self.loop.call_at(self.pending[0][1], self.check)

    def check(self) -> None:
        self.watchdog = None
        if self.closed or not self.pending:
            return
        head = self.pending[0]
        if self.loop.time() < head[1]:
            self.watchdog = self.loop.call_at(head[1], self.check)
            return
        # Overdue on the loop's clock, but a busy loop may not have read a reply that came
        # in time: libuv (uvloop) runs due timers at the end of a turn, after its I/O
        # callbacks and before it reads the sockets again. Decide two callbacks later,
        # which in uvloop and asyncio alike is after the loop has read them once more.
        self.watchdog = self.loop.call_soon(self.after_io, head)

    def after_io(self, head: _Pending) -> None:
        self.watchdog = self.loop.call_soon(self.confirm, head)

    def confirm(self, head: _Pending) -> None:
        self.watchdog = None
        if self.closed:
            return
        if self.pending and self.pending[0] is head:
            self.stalled()
        elif self.pending:
            self.arm()

    def stalled(self) -> None:
        waiting = len(self.pending)
        log.warning(
            "redis.wire_stalled",
            timeout_seconds=self.timeout,
            commands_failed=waiting,
            note="connection dropped; the next command reconnects",
        )
        message = f"Redis did not answer within {self.timeout} s; the connection was dropped"
        self.shut(RedisTimeoutError, message)

    # Closing

    def shut(self, kind: type[RedisError], message: str) -> None:
        """Fail every command waiting with ``kind(message)`` and drop the transport.

        Idempotent: only the first reason counts."""
        if self.closed:
            return
        self.closed = True
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None
        pending = self.pending
        while pending:
            future = pending.popleft()[0]
            if not future.done():
                future.set_exception(kind(message))
        self.transport.abort()
        self.on_closed(self)


class RedisWire:
    """A Redis connection shared by every concurrent caller of one event loop.

    Commands are written as they come and answered in order; see the module
    docstring for timeouts, back-pressure and what not to send. It connects on
    first use (or ``connect()``), and after the connection was lost or
    declared stalled the next call connects again; concurrent callers share one
    attempt. Commands are never retried. Use it from one event loop only.

    Raises ``ValueError`` for a URL it does not support (see
    ``RedisAddress.from_url``): the caller can use redis-py instead.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = SOCKET_TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
        max_pending: int = DEFAULT_MAX_PENDING,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if timeout <= 0 or connect_timeout <= 0:
            raise ValueError("Redis timeouts must be positive")
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self.address = RedisAddress.from_url(url)
        if ssl_context is not None and not self.address.tls:
            raise ValueError("an SSL context needs a rediss:// URL")
        self._ssl = ssl_context
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._max_pending = max_pending
        self._connection: _Connection | None = None
        self._connecting: asyncio.Task[_Connection] | None = None
        self._closed = False
        self._opened = 0
        self._writes_closed = 0
        self._memo: dict[tuple[Any, ...], bytes] = {}

    @property
    def connected(self) -> bool:
        """True while a connection is open (it may still turn out to be stalled)."""
        return self._connection is not None

    @property
    def pending(self) -> int:
        """Commands sent and not answered yet (cancelled callers' included)."""
        return len(self._connection.pending) if self._connection is not None else 0

    @property
    def connections_opened(self) -> int:
        """How many connections this wire has opened so far."""
        return self._opened

    @property
    def writes(self) -> int:
        """How many writes (system calls) have carried commands so far, over every connection."""
        current = self._connection.writes if self._connection is not None else 0
        return self._writes_closed + current

    @property
    def packed_kept(self) -> int:
        """How many packed commands are kept for reuse (``_packed``)."""
        return len(self._memo)

    def call(self, *args: Arg, reuse: bool = False) -> Awaitable[Any]:
        """Send one command; awaiting what this returns gives its reply.

        Not a coroutine: on an open connection the command is queued at once and
        the reply's own future is returned, so a caller's await costs no frame of
        this method's (a cache hit waits on two commands). ``reuse``: the same
        command is likely to be sent again (see ``_packed``).

        Raises ``ResponseError`` (or redis-py's subclass for the reply) for an
        error reply, ``ConnectionError`` when Redis cannot be reached or the
        connection is lost, ``TimeoutError`` when the connection stalled, and
        ``RedisBusy`` when ``max_pending`` commands are already waiting.
        """
        # Packed before anything is sent: an argument hiredis refuses raises TypeError here.
        packed = self._packed(args, one=True) if reuse else _pack(args)
        connection = self._connection
        if connection is None or connection.closed:
            return self._call_connected(packed)
        return self._submit(connection, packed)

    def tell(self, *args: Arg, reuse: bool = False) -> bool:
        """Send one command whose reply nobody waits for (read and dropped, error or not);
        False, sending nothing, when no connection is open or ``max_pending`` commands are
        waiting. It keeps its place in the order: a command sent later on this wire runs
        after it. ``reuse``: as for ``call``."""
        connection = self._connection
        if connection is None or connection.closed:
            return False
        pending = connection.pending
        if len(pending) >= self._max_pending:
            return False
        connection.write(self._packed(args, one=True) if reuse else _pack(args))
        pending.append((connection.unheard, connection.loop.time() + connection.timeout))
        if connection.watchdog is None:
            connection.arm()
        return True

    async def _call_connected(self, packed: bytes) -> Any:
        connection = await self._connected()
        connection.ensure_open()  # it may have been lost while this caller waited
        return await self._submit(connection, packed)

    def _submit(self, connection: _Connection, packed: bytes) -> asyncio.Future[Any]:
        pending = connection.pending
        if len(pending) >= self._max_pending:
            raise RedisBusy(f"{len(pending)} Redis commands are already waiting")
        connection.write(packed)
        loop = connection.loop
        future = loop.create_future()
        pending.append((future, loop.time() + connection.timeout))
        if connection.watchdog is None:
            connection.arm()
        return future

    def _packed(self, commands: tuple[Any, ...], *, one: bool) -> bytes:
        """``commands`` packed (``one``: it is a single command's arguments), from the
        memo when they were packed before.

        hiredis formats every argument with ``sprintf``: a hit's lookup and budget
        take (three commands, 16 arguments) cost 25,000 instructions to pack, a
        twelfth of the hit (callgrind), and the same few commands go out again and
        again (a client's take for the same query, the lookup of the same entry).
        Bounded; the oldest packing goes first. Every argument must be hashable.
        """
        memo = self._memo
        packed = memo.get(commands)
        if packed is None:
            if one:
                packed = _pack(commands)
            else:
                packed = b"".join([_pack(tuple(command)) for command in commands])
            if len(memo) >= PACKED_MEMO_ENTRIES:
                del memo[next(iter(memo))]
            memo[commands] = packed
        return packed

    async def calls(
        self, *commands: Sequence[Arg], raise_on_error: bool = True, reuse: bool = False
    ) -> list[Any]:
        """Send several commands in one write and return their replies, in order.

        Every command runs whatever the others answer (this is a pipeline, not a
        transaction). With ``raise_on_error`` the first error reply is raised
        once all replies are in; without, error replies are returned as
        exceptions in the list. A lost or stalled connection raises at once.
        ``reuse``: as for ``call`` (the commands must then be tuples).
        """
        if not commands:
            return []
        packed = (
            self._packed(commands, one=False)
            if reuse
            else b"".join([_pack(tuple(command)) for command in commands])
        )
        connection = self._connection
        if connection is None or connection.closed:
            connection = await self._connected()
        if len(connection.pending) + len(commands) > self._max_pending:
            raise RedisBusy(f"{len(connection.pending)} Redis commands are already waiting")
        futures = connection.send(packed, len(commands))
        replies: list[Any] = []
        try:
            for future in futures:
                try:
                    replies.append(await future)
                except ResponseError as error:
                    replies.append(error)
        except BaseException:
            abandon(futures)
            raise
        if raise_on_error:
            for reply in replies:
                if isinstance(reply, ResponseError):
                    raise reply
        return replies

    async def evalsha(
        self,
        script: Script,
        keys: Sequence[Arg] = (),
        args: Sequence[Arg] = (),
        *,
        reuse: bool = False,
    ) -> Any:
        """Run ``script`` by its SHA-1; if Redis does not have it (``NOSCRIPT``, after a
        restart or ``SCRIPT FLUSH``), load it and run it again, in one round trip.
        ``reuse``: as for ``call``."""
        try:
            return await self.call("EVALSHA", script.sha, len(keys), *keys, *args, reuse=reuse)
        except NoScriptError:
            loaded = await self.calls(
                ("SCRIPT", "LOAD", script.source),
                ("EVALSHA", script.sha, len(keys), *keys, *args),
            )
            return loaded[1]

    async def connect(self) -> None:
        """Open the connection now (a warm-up before traffic) unless it is open.

        Raises ``ConnectionError`` (or ``AuthenticationError``, ``ResponseError``
        for a database that does not exist) like the first call would.
        """
        if self._connection is None:
            await self._connected()

    async def close(self) -> None:
        """Fail every command waiting with ``ConnectionError`` and close the connection.

        Idempotent. Calls afterwards raise ``ConnectionError``.
        """
        self._closed = True
        task = self._connecting
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
        connection = self._connection
        if connection is not None:
            connection.shut(RedisConnectionError, "the Redis connection was closed")
            await connection.done

    async def _connected(self) -> _Connection:
        """The connection, opened by one attempt shared by every caller that needs it."""
        if self._closed:
            raise RedisConnectionError("the Redis connection was closed")
        task = self._connecting
        if task is None:
            task = asyncio.get_running_loop().create_task(self._open())
            task.add_done_callback(self._connect_done)
            self._connecting = task
        try:
            # Shielded: a caller cancelled while waiting leaves the attempt to the others.
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and (current is None or not current.cancelling()):
                raise RedisConnectionError("the Redis connection was closed") from None
            raise

    def _connect_done(self, task: asyncio.Task[_Connection]) -> None:
        if self._connecting is task:
            self._connecting = None
        if not task.cancelled():
            task.exception()  # retrieved: every caller waiting has been given it

    async def _open(self) -> _Connection:
        address = self.address
        loop = asyncio.get_running_loop()

        def protocol() -> _Connection:
            return _Connection(loop, self._timeout, self._forget)

        try:
            async with asyncio.timeout(self._connect_timeout):
                if address.path is not None:
                    _, connection = await loop.create_unix_connection(protocol, address.path)
                elif address.tls:
                    context = self._ssl or ssl.create_default_context()
                    _, connection = await loop.create_connection(
                        protocol,
                        address.host,
                        address.port,
                        ssl=context,
                        server_hostname=address.host,
                    )
                else:
                    _, connection = await loop.create_connection(
                        protocol, address.host, address.port
                    )
                try:
                    await self._handshake(connection)
                except BaseException:
                    connection.shut(RedisConnectionError, "setting up the Redis connection failed")
                    raise
        except TimeoutError as error:  # asyncio.timeout's: before OSError, its base
            raise RedisConnectionError(
                f"Timed out connecting to {address.describe()} after {self._connect_timeout} s"
            ) from error
        except OSError as error:
            raise RedisConnectionError(
                f"Error connecting to {address.describe()}: {error}"
            ) from error
        if self._closed:
            connection.shut(RedisConnectionError, "the Redis connection was closed")
            raise RedisConnectionError("the Redis connection was closed")
        self._opened += 1
        self._connection = connection
        return connection

    async def _handshake(self, connection: _Connection) -> None:
        """AUTH and SELECT, sent together before the connection is shared."""
        address = self.address
        commands: list[tuple[Arg, ...]] = []
        if address.password is not None:
            if address.username is not None:
                commands.append(("AUTH", address.username, address.password))
            else:
                commands.append(("AUTH", address.password))
        if address.db:
            commands.append(("SELECT", address.db))
        if not commands:
            return
        futures = connection.send(b"".join([_pack(command) for command in commands]), len(commands))
        try:
            for future in futures:
                await future
        except BaseException:
            abandon(futures)
            raise

    def _forget(self, connection: _Connection) -> None:
        """A connection closed (lost, stalled, closed): the next call opens a new one."""
        self._writes_closed += connection.writes
        if self._connection is connection:
            self._connection = None


def abandon(futures: list[asyncio.Future[Any]]) -> None:
    """Leave a batch's futures: unanswered ones are cancelled (their replies will be
    dropped), failed ones have their exception marked as seen."""
    for future in futures:
        if not future.done():
            future.cancel()
        elif not future.cancelled():
            future.exception()

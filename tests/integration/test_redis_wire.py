"""RedisWire (infra/redis_wire.py) on real Redis: under concurrency every caller gets its
own reply, errors keep redis-py's classes, scripts survive SCRIPT FLUSH, and the one
connection fails cleanly and comes back when Redis stops, stalls (SIGSTOP) or is closed.

Tests that stop, freeze, reconfigure or flush a server run a redis-server of their own
on a spare port. On the machine's shared Redis only keys under a per-test prefix are
touched, and deleted afterwards. Nothing is timed: outcomes are counted.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import select
import shutil
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis
import uvloop
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, NoScriptError, ReadOnlyError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from infra import redis_wire
from infra.redis import RedisBusy, is_outage
from infra.redis_wire import RedisWire, Script
from tests.conftest import REDIS_URL
from tests.support import RedisProcess, free_port

# Bounds a hang only (a test waiting for commands to be in flight); nothing asserts on time.
HANG_SECONDS = 20.0
# For wires whose commands must not time out while a test holds the server frozen.
PATIENT = 60.0


@pytest.fixture
async def wire() -> AsyncIterator[RedisWire]:
    """A wire on the shared Redis."""
    shared = RedisWire(REDIS_URL)
    yield shared
    await shared.close()


async def until(condition: Callable[[], bool], what: str) -> None:
    """Let the loop run until ``condition()`` holds; the deadline only bounds a hang."""
    deadline = time.monotonic() + HANG_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.01)


def started(*calls: Awaitable[Any]) -> list[asyncio.Future[Any]]:
    # ensure_future: ``call`` gives the reply's future itself on an open connection.
    return [asyncio.ensure_future(call) for call in calls]


# Many callers, one connection


async def test_concurrent_callers_each_get_their_own_reply(wire: RedisWire, prefix: str) -> None:
    """64 tasks, 16 rounds each of SET, GET and INCR: 3,072 commands on one connection."""
    counter = f"{prefix}counter"
    counts: list[int] = []

    async def caller(task: int) -> int:
        matched = 0
        for round_ in range(16):
            key = f"{prefix}{task}:{round_}"
            value = os.urandom(16) + f"{task}:{round_}".encode()
            assert await wire.call("SET", key, value) == b"OK"
            counts.append(await wire.call("INCR", counter))
            if await wire.call("GET", key) == value:
                matched += 1
        return matched

    matched = await asyncio.gather(*(caller(task) for task in range(64)))
    assert matched == [16] * 64
    # Every INCR got its own count back, once each.
    assert sorted(counts) == list(range(1, 64 * 16 + 1))
    assert await wire.call("GET", counter) == b"1024"
    assert wire.connections_opened == 1
    assert wire.pending == 0


async def test_the_commands_of_one_turn_of_the_loop_leave_in_one_write(
    wire: RedisWire, prefix: str
) -> None:
    """Callers that send in the same turn of the event loop share one system call; a caller
    alone still gets its own, at the end of its turn."""
    await wire.call("SET", f"{prefix}k", b"v")
    before = wire.writes
    replies = await asyncio.gather(*(wire.call("GET", f"{prefix}k") for _ in range(200)))
    assert replies == [b"v"] * 200
    assert wire.writes == before + 1
    for _ in range(3):
        assert await wire.call("GET", f"{prefix}k") == b"v"
    assert wire.writes == before + 4


async def test_concurrent_first_callers_share_one_connection(own_redis: RedisProcess) -> None:
    wire = RedisWire(own_redis.url)
    try:
        ids = await asyncio.gather(*(wire.call("CLIENT", "ID") for _ in range(50)))
        assert len(set(ids)) == 1
        assert wire.connections_opened == 1
    finally:
        await wire.close()


async def test_values_are_binary_safe(wire: RedisWire, prefix: str) -> None:
    values = {
        f"{prefix}bytes".encode() + bytes(range(256)): bytes(range(256)),
        f"{prefix}empty".encode(): b"",
        # What a reply looks like on the wire, as a value.
        f"{prefix}resp".encode(): b"\r\n$-1\r\n*3\r\n-ERR no\r\n+OK\r\n:1\r\n",
        f"{prefix}text".encode(): "héllo ✓ 市場".encode(),
        # Larger than any one read: the reply is parsed from many pieces.
        f"{prefix}large".encode(): os.urandom(1024 * 1024),
    }
    for key, value in values.items():
        assert await wire.call("SET", key, value) == b"OK"
    keys = list(values)
    assert await wire.call("MGET", *keys) == [values[key] for key in keys]
    # Interleaved large and small replies, concurrently.
    replies = await asyncio.gather(*(wire.call("GET", key) for key in keys * 10))
    assert replies == [values[key] for key in keys * 10]
    assert await wire.call("GET", f"{prefix}missing") is None


async def test_a_pipeline_runs_every_command_and_answers_in_order(
    wire: RedisWire, prefix: str
) -> None:
    text, number = f"{prefix}text", f"{prefix}number"
    await wire.call("SET", text, "not a number")
    with pytest.raises(ResponseError, match="not an integer"):
        await wire.calls(("SET", number, 1), ("INCR", text), ("INCR", number))
    # The command after the error ran all the same.
    assert await wire.call("GET", number) == b"2"
    replies = await wire.calls(("INCR", number), ("INCR", text), raise_on_error=False)
    assert replies[0] == 3
    assert isinstance(replies[1], ResponseError)
    assert await wire.calls() == []
    assert wire.connections_opened == 1


async def test_reused_commands_are_packed_once_and_the_packings_kept_are_bounded(
    wire: RedisWire, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_wire, "PACKED_MEMO_ENTRIES", 8)
    counter = f"{prefix}n"
    # The same command again and again: one packing kept, and each one sent (INCR counts).
    for expected in range(1, 51):
        assert await wire.call("INCR", counter, reuse=True) == expected
    assert wire.packed_kept == 1
    # A pipeline is kept as a whole, apart from the single command it starts with.
    for expected in range(51, 54):
        pair = await wire.calls(("INCR", counter), ("GET", counter), reuse=True)
        assert pair == [expected, str(expected).encode()]
    assert wire.packed_kept == 2
    # Twenty different commands: only the last eight packings are kept, every reply right.
    for index in range(20):
        assert await wire.call("SET", f"{prefix}k{index}", index, reuse=True) == b"OK"
    assert wire.packed_kept == 8
    for index in range(20):
        assert await wire.call("GET", f"{prefix}k{index}", reuse=True) == str(index).encode()
    assert wire.packed_kept == 8
    assert await wire.call("INCR", counter, reuse=True) == 54


async def test_a_reused_command_must_be_hashable_and_nothing_is_sent_when_it_is_not(
    wire: RedisWire, prefix: str
) -> None:
    await wire.connect()
    writes = wire.writes
    # A writable buffer cannot be hashed (ValueError); a list could not either (TypeError).
    with pytest.raises(ValueError, match="hash"):
        await wire.call("SET", f"{prefix}k", memoryview(bytearray(b"v")), reuse=True)
    assert wire.pending == 0
    assert wire.packed_kept == 0
    assert await wire.call("SET", f"{prefix}k", memoryview(bytearray(b"v"))) == b"OK"
    assert wire.writes == writes + 1


# Errors


async def test_error_replies_raise_and_leave_the_connection_usable(
    wire: RedisWire, prefix: str
) -> None:
    text = f"{prefix}text"
    await wire.call("SET", text, "not a number")

    async def caller(index: int) -> str:
        if index % 3 == 0:
            with pytest.raises(ResponseError, match="not an integer"):
                await wire.call("INCR", text)
            return "error"
        if index % 3 == 1:
            with pytest.raises(ResponseError, match="unknown command"):
                await wire.call("NOSUCHCOMMAND", index)
            return "error"
        reply: bytes = await wire.call("ECHO", f"echo {index}")
        return reply.decode()

    replies = await asyncio.gather(*(caller(index) for index in range(300)))
    assert replies == ["error" if index % 3 < 2 else f"echo {index}" for index in range(300)]
    assert await wire.call("PING") == b"PONG"
    assert wire.connections_opened == 1


async def test_error_replies_are_redis_py_s_exceptions_and_outages_alike(
    wire: RedisWire,
) -> None:
    """The same error reply, made by a script, through the wire and through redis-py."""
    replies = [
        "READONLY You can't write against a read only replica.",
        "NOSCRIPT No matching script. Please use EVAL.",
        "LOADING Redis is loading the dataset in memory",
        "BUSY Redis is busy running a script.",
        "MISCONF Redis is configured to save RDB snapshots",
        "OOM command not allowed when used memory > 'maxmemory'.",
        "NOPERM this user has no permissions to run the 'set' command",
        "WRONGTYPE Operation against a key holding the wrong kind of value",
        "ERR max number of clients reached",
    ]
    script = "return redis.error_reply(ARGV[1])"
    client = Redis.from_url(REDIS_URL)
    try:
        for reply in replies:
            with pytest.raises(redis.RedisError) as ours:
                await wire.call("EVAL", script, 0, reply)
            with pytest.raises(redis.RedisError) as theirs:
                await client.eval(script, 0, reply)
            assert type(ours.value) is type(theirs.value), reply
            assert str(ours.value) == str(theirs.value)
            assert is_outage(ours.value) == is_outage(theirs.value)
    finally:
        await client.aclose()
    assert await wire.call("PING") == b"PONG"


async def test_a_read_only_replica_is_a_read_only_error_and_an_outage(
    own_redis: RedisProcess,
) -> None:
    wire = RedisWire(own_redis.url)
    try:
        # A replica of a master nobody runs: it refuses writes.
        await wire.call("REPLICAOF", "127.0.0.1", free_port())
        with pytest.raises(ReadOnlyError) as refused:
            await wire.call("SET", "k", "v")
        assert is_outage(refused.value)
        assert await wire.call("GET", "k") is None
        await wire.call("REPLICAOF", "NO", "ONE")
        assert await wire.call("SET", "k", "v") == b"OK"
    finally:
        await wire.close()


async def test_a_told_command_runs_in_order_and_its_reply_is_dropped(wire: RedisWire) -> None:
    key = f"mgtest-wire:{uuid.uuid4().hex}"
    await wire.connect()
    assert wire.tell("SET", key, "1", "EX", 60)
    assert wire.tell("INCR", key)
    assert wire.tell("HGET", key, "f")  # an error reply (wrong type), dropped all the same
    # Each later command gets its own reply, after what was told ran.
    assert await wire.call("GET", key) == b"2"
    assert wire.pending == 0
    assert await wire.call("DEL", key) == 1


async def test_tell_sends_nothing_without_an_open_connection() -> None:
    wire = RedisWire(REDIS_URL)
    assert not wire.tell("PING")
    assert wire.writes == 0
    await wire.close()


# Scripts


async def test_evalsha_loads_a_script_redis_does_not_have(own_redis: RedisProcess) -> None:
    script = Script("return {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1])}")
    wire = RedisWire(own_redis.url)
    try:
        assert await wire.call("SCRIPT", "EXISTS", script.sha) == [0]
        with pytest.raises(NoScriptError):
            await wire.call("EVALSHA", script.sha, 1, "n", "a")
        assert await wire.evalsha(script, ["n"], ["a"]) == [b"n", b"a", 1]
        assert await wire.call("SCRIPT", "EXISTS", script.sha) == [1]

        await wire.call("SCRIPT", "FLUSH")
        assert await wire.call("SCRIPT", "EXISTS", script.sha) == [0]
        results = await asyncio.gather(
            *(wire.evalsha(script, ["n"], [f"arg {index}"]) for index in range(50))
        )
        assert [result[1] for result in results] == [f"arg {index}".encode() for index in range(50)]
        assert sorted(result[2] for result in results) == list(range(2, 52))
        assert await wire.call("SCRIPT", "EXISTS", script.sha) == [1]
        # The SHA-1 computed here is the one Redis computes.
        assert await wire.call("SCRIPT", "LOAD", script.source) == script.sha.encode()

        # A script's own error is raised as it is, not retried.
        with pytest.raises(ResponseError, match="Unknown Redis command"):
            await wire.evalsha(Script("return redis.call('NOSUCHCOMMAND')"))
        assert await wire.call("GET", "n") == b"51"
        assert wire.connections_opened == 1
    finally:
        await wire.close()


# Connecting: database, password, TLS, unix socket


async def test_the_database_in_the_url_is_selected(own_redis: RedisProcess) -> None:
    port = own_redis.port
    in_path = RedisWire(f"redis://127.0.0.1:{port}/3")
    in_query = RedisWire(f"redis://127.0.0.1:{port}?db=4")
    default = RedisWire(f"redis://127.0.0.1:{port}")
    try:
        assert await in_path.call("SET", "where", "three") == b"OK"
        assert await in_query.call("SET", "where", "four") == b"OK"
        assert await default.call("GET", "where") is None
        assert b" db=3 " in await in_path.call("CLIENT", "INFO")
        for db, value in ((3, b"three"), (4, b"four")):
            client = Redis(port=port, db=db)
            assert await client.get("where") == value
            await client.aclose()
    finally:
        for wire in (in_path, in_query, default):
            await wire.close()


async def test_a_password_and_a_user_from_the_url_authenticate(own_redis: RedisProcess) -> None:
    port = own_redis.port
    admin = RedisWire(own_redis.url)
    await admin.call("ACL", "SETUSER", "alice", "on", ">al!ce pw", "~*", "+@all")
    # Connections already open stay signed in; new ones need the password.
    await admin.call("CONFIG", "SET", "requirepass", "s3cret/pw")
    default = RedisWire(f"redis://:{quote('s3cret/pw', safe='')}@127.0.0.1:{port}/2")
    alice = RedisWire(f"redis://alice:{quote('al!ce pw', safe='')}@127.0.0.1:{port}/0")
    wrong = RedisWire(f"redis://:wrong@127.0.0.1:{port}/0")
    anonymous = RedisWire(own_redis.url)
    try:
        assert await default.call("ACL", "WHOAMI") == b"default"
        assert b" db=2 " in await default.call("CLIENT", "INFO")
        assert await alice.call("ACL", "WHOAMI") == b"alice"
        # redis-py's classes: an AuthenticationError is a ConnectionError.
        with pytest.raises(AuthenticationError, match="invalid username-password"):
            await wrong.call("PING")
        assert not wrong.connected
        with pytest.raises(AuthenticationError, match="Authentication required"):
            await anonymous.call("PING")
    finally:
        for wire in (admin, default, alice, wrong, anonymous):
            await wire.close()


@contextmanager
def server_with(arguments: list[str], client: redis.Redis) -> Iterator[None]:
    """A redis-server of the test's own with ``arguments``, ready when ``client`` pings."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is needed"
    process = subprocess.Popen(
        [binary, "--save", "", "--appendonly", "no", *arguments],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + HANG_SECONDS
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert process.poll() is None, "redis-server exited"
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        yield
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=HANG_SECONDS)


def certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA of the test's own and a certificate it signed for localhost: (ca, cert, key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "marketgraph test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = (directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


async def test_rediss_connects_over_tls_and_verifies_the_certificate(tmp_path: Path) -> None:
    ca, cert, key = certificates(tmp_path)
    port = free_port()
    arguments = ["--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1"]
    arguments += ["--tls-cert-file", str(cert), "--tls-key-file", str(key)]
    arguments += ["--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no"]
    ready = redis.Redis(port=port, ssl=True, ssl_ca_certs=str(ca))
    with server_with(arguments, ready):
        trusting = ssl.create_default_context(cafile=str(ca))
        wire = RedisWire(f"rediss://localhost:{port}/2", ssl_context=trusting)
        # The default context does not trust the test's CA: the handshake must fail.
        untrusting = RedisWire(f"rediss://localhost:{port}/0")
        try:
            assert await wire.call("SET", "k", b"over tls") == b"OK"
            assert (
                await asyncio.gather(*(wire.call("GET", "k") for _ in range(20)))
                == [b"over tls"] * 20
            )
            assert b" db=2 " in await wire.call("CLIENT", "INFO")
            with pytest.raises(RedisConnectionError) as refused:
                await untrusting.call("PING")
            assert isinstance(refused.value.__cause__, ssl.SSLCertVerificationError)
        finally:
            await wire.close()
            await untrusting.close()


async def test_unix_urls_connect_to_the_socket(tmp_path: Path) -> None:
    path = tmp_path / "redis.sock"
    arguments = ["--port", "0", "--unixsocket", str(path), "--unixsocketperm", "700"]
    with server_with(arguments, redis.Redis(unix_socket_path=str(path))):
        wire = RedisWire(f"unix://{path}?db=1")
        try:
            assert await wire.call("SET", "k", "v") == b"OK"
            assert b" db=1 " in await wire.call("CLIENT", "INFO")
        finally:
            await wire.close()


# Cancellation, back-pressure, closing


async def test_a_cancelled_caller_leaves_later_replies_matched(own_redis: RedisProcess) -> None:
    wire = RedisWire(own_redis.url, timeout=PATIENT)
    try:
        await wire.calls(*(("SET", f"k:{index}", f"v-{index}") for index in range(40)))
        own_redis.freeze()
        try:
            first = started(*(wire.call("GET", f"k:{index}") for index in range(40)))
            await until(lambda: wire.pending == 40, "40 commands are in flight")
            for task in first[::2]:
                task.cancel()
            cancelled = await asyncio.gather(*first[::2], return_exceptions=True)
            assert all(isinstance(result, asyncio.CancelledError) for result in cancelled)
            # Their commands were sent: their replies are still to come, and to be dropped.
            assert wire.pending == 40
            later = started(*(wire.call("GET", f"k:{index}") for index in range(40)))
            await until(lambda: wire.pending == 80, "80 commands are in flight")
        finally:
            own_redis.thaw()
        assert await asyncio.gather(*first[1::2]) == [f"v-{i}".encode() for i in range(1, 40, 2)]
        assert await asyncio.gather(*later) == [f"v-{i}".encode() for i in range(40)]
        assert wire.pending == 0
        assert wire.connections_opened == 1
    finally:
        await wire.close()


async def test_a_caller_cancelled_while_connecting_leaves_the_attempt_to_the_others(
    own_redis: RedisProcess,
) -> None:
    # db 1: the connection sends SELECT before it is shared, and the frozen server holds it.
    wire = RedisWire(f"redis://127.0.0.1:{own_redis.port}/1", connect_timeout=PATIENT)
    own_redis.freeze()
    try:
        first, second = started(wire.call("ECHO", "first"), wire.call("ECHO", "second"))
        await asyncio.sleep(0.1)  # a head start; either way, the outcome below must hold
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
    finally:
        own_redis.thaw()
    try:
        assert await second == b"second"
        assert wire.connections_opened == 1
    finally:
        await wire.close()


async def test_more_commands_waiting_than_the_bound_is_busy_not_an_outage(
    own_redis: RedisProcess,
) -> None:
    wire = RedisWire(own_redis.url, timeout=PATIENT, max_pending=8)
    try:
        await wire.connect()
        own_redis.freeze()
        try:
            waiting = started(*(wire.call("ECHO", index) for index in range(8)))
            await until(lambda: wire.pending == 8, "8 commands are in flight")
            with pytest.raises(RedisBusy) as busy:
                await wire.call("PING")
            assert not is_outage(busy.value)
            with pytest.raises(RedisBusy):
                await wire.calls(("PING",))
            assert wire.pending == 8
        finally:
            own_redis.thaw()
        assert await asyncio.gather(*waiting) == [str(index).encode() for index in range(8)]
        assert await wire.calls(*(("ECHO", index) for index in range(8))) == [
            str(index).encode() for index in range(8)
        ]
    finally:
        await wire.close()


async def test_close_fails_the_commands_waiting_and_is_idempotent(
    own_redis: RedisProcess,
) -> None:
    wire = RedisWire(own_redis.url, timeout=PATIENT)
    await wire.connect()
    assert wire.connected
    own_redis.freeze()
    try:
        waiting = started(*(wire.call("ECHO", index) for index in range(10)))
        batch = started(wire.calls(("ECHO", "a"), ("ECHO", "b")))
        await until(lambda: wire.pending == 12, "12 commands are in flight")
        await wire.close()
        results = await asyncio.gather(*waiting, *batch, return_exceptions=True)
        assert sum(isinstance(result, RedisConnectionError) for result in results) == 11
        assert not wire.connected
        await wire.close()
        with pytest.raises(RedisConnectionError, match="closed"):
            await wire.call("PING")
    finally:
        own_redis.thaw()


async def test_close_while_connecting_fails_the_callers_waiting(own_redis: RedisProcess) -> None:
    wire = RedisWire(f"redis://127.0.0.1:{own_redis.port}/1", connect_timeout=PATIENT)
    own_redis.freeze()
    try:
        waiting = started(*(wire.call("ECHO", index) for index in range(5)))
        await asyncio.sleep(0.1)  # a head start; either way, the outcome below must hold
        await wire.close()
        results = await asyncio.gather(*waiting, return_exceptions=True)
        assert sum(isinstance(result, RedisConnectionError) for result in results) == 5
        assert wire.connections_opened == 0
    finally:
        own_redis.thaw()


# Faults: Redis stopped, killed, frozen; a loop running late


async def test_a_stopped_server_is_a_connection_error_and_a_restart_is_reconnected(
    own_redis: RedisProcess,
) -> None:
    # Patient timeouts: a ConnectionError, not a TimeoutError, shows nothing waited for them.
    wire = RedisWire(own_redis.url, timeout=PATIENT, connect_timeout=PATIENT)
    try:
        assert await wire.call("SET", "k", "before") == b"OK"
        own_redis.stop()
        for _ in range(3):
            with pytest.raises(RedisConnectionError):
                await wire.call("GET", "k")
        assert not wire.connected
        own_redis.start()  # on the same port, empty
        assert await wire.call("GET", "k") is None
        assert await wire.call("SET", "k", "after") == b"OK"
        assert wire.connections_opened == 2

        # Killed with commands in flight (frozen first, so none is answered): each fails.
        own_redis.freeze()
        waiting = started(*(wire.call("ECHO", index) for index in range(25)))
        await until(lambda: wire.pending == 25, "25 commands are in flight")
        assert own_redis.process is not None
        own_redis.process.kill()
        own_redis.process.wait(timeout=HANG_SECONDS)
        results = await asyncio.gather(*waiting, return_exceptions=True)
        assert sum(isinstance(result, RedisConnectionError) for result in results) == 25
        own_redis.start()
        assert await wire.call("ECHO", "back") == b"back"
        assert wire.connections_opened == 3
    finally:
        await wire.close()


async def test_a_frozen_server_times_out_every_waiting_command_and_no_late_reply_is_misread(
    own_redis: RedisProcess,
) -> None:
    wire = RedisWire(own_redis.url, timeout=0.2)
    try:
        await wire.calls(*(("SET", f"late:{index}", f"late {index}") for index in range(20)))
        own_redis.freeze()
        try:
            waiting = started(*(wire.call("GET", f"late:{index}") for index in range(20)))
            results = await asyncio.gather(*waiting, return_exceptions=True)
            assert sum(isinstance(result, RedisTimeoutError) for result in results) == 20
            assert all(is_outage(result) for result in results if isinstance(result, Exception))
            assert not wire.connected
            # Still frozen: the kernel accepts a new connection, its command times out too.
            with pytest.raises(RedisTimeoutError):
                await wire.call("GET", "late:0")
        finally:
            own_redis.thaw()
        # The server now answers what it had been sent on the dropped connections: none of
        # those replies ("late ...") may reach the new callers.
        answers = await asyncio.gather(*(wire.call("ECHO", f"new {i}") for i in range(200)))
        assert answers == [f"new {i}".encode() for i in range(200)]
        assert wire.connections_opened == 3
    finally:
        await wire.close()


class Busy(asyncio.Protocol):
    """Keeps the loop busy from inside its I/O phase, as a request being read would.

    When a byte arrives: lets the frozen Redis go, blocks until its reply is in the
    socket (so it arrived in time) and then past the command's deadline."""

    def __init__(self, redis_server: RedisProcess, redis_socket: Any, past_deadline: float) -> None:
        self.redis_server = redis_server
        self.redis_socket = redis_socket
        self.past_deadline = past_deadline
        # Checked by the test: an assertion in a protocol callback would only be logged.
        self.reply_was_in_time = False

    def data_received(self, data: bytes) -> None:
        self.redis_server.thaw()
        readable, _, _ = select.select([self.redis_socket], [], [], HANG_SECONDS)
        self.reply_was_in_time = bool(readable)
        time.sleep(self.past_deadline)


async def reply_read_late(redis_server: RedisProcess) -> bytes:
    """A command's reply that arrives in time while the loop is busy past its deadline."""
    timeout = 1.0
    wire = RedisWire(redis_server.url, timeout=timeout)
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    try:
        await wire.connect()
        connection = wire._connection  # the test watches the socket underneath
        assert connection is not None
        redis_socket = connection.transport.get_extra_info("socket")
        protocol = Busy(redis_server, redis_socket, 1.5 * timeout)
        busy, _ = await loop.connect_accepted_socket(lambda: protocol, ours)
        redis_server.freeze()
        try:
            written = wire.writes
            task = asyncio.ensure_future(wire.call("ECHO", "in time"))
            # The command leaves at the end of the loop's turn (the wire coalesces writes):
            # it must be in the socket before Busy waits for its reply.
            for _ in range(10):
                await asyncio.sleep(0)
                if wire.writes > written:
                    break
            assert wire.writes == written + 1
            assert wire.pending == 1
            theirs.send(b"x")  # wakes Busy up
            reply: bytes = await task
        finally:
            redis_server.thaw()
        busy.close()
        assert protocol.reply_was_in_time
        return reply
    finally:
        theirs.close()
        await wire.close()


@pytest.mark.parametrize("loop_factory", [asyncio.new_event_loop, uvloop.new_event_loop])
def test_a_reply_read_late_by_a_busy_loop_is_not_a_timeout(
    loop_factory: Callable[[], asyncio.AbstractEventLoop], own_redis: RedisProcess
) -> None:
    """uvloop (libuv) runs due timers after the I/O callbacks of a turn, before the next
    read: the watchdog must look again once the loop has read what arrived, or a loop
    busy in an I/O callback times out replies that came in time."""
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        assert runner.run(reply_read_late(own_redis)) == b"in time"

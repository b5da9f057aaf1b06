"""``marketgraph serve`` as a real subprocess on a spare port, stopped by its PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from tests.support import free_port

MARKETGRAPH = str(Path(sys.executable).with_name("marketgraph"))
# Variables the command reads; a test's own values replace whatever the shell has.
OWN = (
    "DATABASE_URL",
    "REDIS_URL",
    "JWT_SECRET",
    "JWT_KEYS",
    "MARKETGRAPH_ENV",
    "MARKETGRAPH_DATA_DIR",
    "TRUSTED_PROXIES",
    "GRAPHIQL_ENABLED",
    "GRAPHIQL_ASSETS_DIR",
    "INTROSPECTION_ENABLED",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "CORS_ORIGINS",
    "DB_POOL_SIZE",
    "DB_POOL_OVERFLOW",
    "PROMETHEUS_MULTIPROC_DIR",
    "MARKETGRAPH_ADMIN_PASSWORD",
)
START_TIMEOUT = 120  # spawning workers on a busy 2-core machine is slow; a guard, not a measure


def command_env(tmp_path: Path, **env: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k not in OWN}
    return environment | {"MARKETGRAPH_DATA_DIR": str(tmp_path / "data"), **env}


class ServeProcess:
    """Runs ``marketgraph serve`` until stopped; its output is kept in files under ``tmp_path``."""

    def __init__(
        self, tmp_path: Path, *args: str, wait_for: str = "/health/ready", **env: str
    ) -> None:
        self.port = free_port()
        self._wait_for = wait_for
        self.url = f"http://127.0.0.1:{self.port}"
        self._stdout = tmp_path / f"serve-{self.port}.out"
        self._stderr = tmp_path / f"serve-{self.port}.err"
        self._args = ("serve", "--port", str(self.port), *args)
        self._env = command_env(tmp_path, **env)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self._stdout.open("wb") as out, self._stderr.open("wb") as err:
            self.process = subprocess.Popen(
                [MARKETGRAPH, *self._args],
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"marketgraph serve exited: {self.stderr_lines()}")
            try:
                if httpx.get(self.url + self._wait_for, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"marketgraph serve did not start: {self.stderr_lines()}")
            time.sleep(0.2)

    def stop(self) -> int:
        """SIGTERM (a graceful shutdown), SIGKILL if that does not end it; the exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def stdout_lines(self) -> list[str]:
        return [line for line in self._stdout.read_text().splitlines() if line.strip()]

    def stderr_lines(self) -> list[str]:
        return [line for line in self._stderr.read_text().splitlines() if line.strip()]

    def __enter__(self) -> ServeProcess:
        self.start()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.stop()

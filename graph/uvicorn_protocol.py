"""uvicorn's fast HTTP/1.1 protocol (httptools), with a cap on the size of a request head.

uvicorn caps the request line and headers only for its h11 protocol
(``h11_max_incomplete_event_size``, 16 KiB by default); its httptools protocol, the one
``uvicorn[standard]`` runs, has no cap at all, so 10 MB of headers were read and kept.
This subclass applies the same setting to httptools: a head over the limit gets
``431 Request Header Fields Too Large`` and the connection is closed.

Two checks, because httptools hands over a header only once it is complete: the exact
size of the request line and headers is added up as they are parsed, and bytes that
arrive while a head is still incomplete are counted too, so an endless header line
cannot grow in memory either.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

DEFAULT_LIMIT = 16 * 1024
_MESSAGE = b"Request line and headers are too large."


class _HeadTooLarge(Exception):
    """Stops the parser; httptools re-raises it as a callback error."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._head_limit = config.h11_max_incomplete_event_size or DEFAULT_LIMIT
        self._head_parsed = 0  # request line and complete headers of the current head
        self._head_received = 0  # bytes received since the current head began
        self._in_head = False
        self._too_large = False

    def on_message_begin(self) -> None:
        self._in_head = True
        self._head_parsed = 0
        self._head_received = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)  # "name: value\r\n"
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        if self._too_large:
            return
        super().data_received(data)
        if self._in_head and not self.transport.is_closing():
            # The head is still incomplete and httptools holds what it has of it: at
            # most this many bytes (more only when a pipelined request shares the read).
            self._head_received += len(data)
            if self._head_received > self._head_limit:
                self._reject()

    def send_400_response(self, msg: str) -> None:
        # uvicorn answers every parser error with 400; a head too large has its own status.
        if self._too_large:
            self._reject()
        else:
            super().send_400_response(msg)

    def _count(self, size: int) -> None:
        self._head_parsed += size
        if self._head_parsed > self._head_limit:
            self._too_large = True
            raise _HeadTooLarge

    def _reject(self) -> None:
        self._too_large = True
        if self.transport.is_closing():
            return
        self.logger.warning("Request head over %d bytes refused.", self._head_limit)
        head = [b"HTTP/1.1 431 Request Header Fields Too Large\r\n"]
        for name, value in self.server_state.default_headers:
            head.extend([name, b": ", value, b"\r\n"])
        head.extend(
            [
                b"content-type: text/plain; charset=utf-8\r\n",
                b"content-length: " + str(len(_MESSAGE)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                _MESSAGE,
            ]
        )
        self.transport.write(b"".join(head))
        self.transport.close()

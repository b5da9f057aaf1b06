"""Structured logging: one JSON object per line, through the standard library.

Our own events (structlog) are rendered once, where they are logged. Every other
library logs stdlib records (uvicorn, Alembic, SQLAlchemy, Python warnings); the root
handler renders those with the same processors, so with ``LOG_FORMAT=json`` every line
a process writes is one JSON object, whoever wrote it.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

# Marks a stdlib record whose message structlog has already rendered.
_RENDERED = "_marketgraph_rendered"


def _dumps(obj: object, default: object = None) -> str:
    return orjson.dumps(obj, default=str).decode()


def _renderer(fmt: str) -> Processor:
    if fmt == "json":
        return structlog.processors.JSONRenderer(serializer=_dumps)
    return structlog.dev.ConsoleRenderer()


def _timestamper() -> Processor:
    return structlog.processors.TimeStamper(fmt="iso", utc=True)


class _Rendered:
    """The last structlog processor: render, and tell the root handler it is done."""

    def __init__(self, fmt: str) -> None:
        self._render = _renderer(fmt)

    def __call__(
        self, logger: WrappedLogger, name: str, event_dict: EventDict
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (self._render(logger, name, event_dict),), {"extra": {_RENDERED: True}}


class LineFormatter(structlog.stdlib.ProcessorFormatter):
    """Formats any stdlib record as one line of the configured format."""

    def __init__(self, fmt: str = "json") -> None:
        super().__init__(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                _renderer(fmt),
            ],
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                _timestamper(),
            ],
        )

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, _RENDERED, False):
            return record.getMessage()
        return super().format(record)


class LogHandler(logging.StreamHandler[TextIO]):
    """The root handler: standard error, one record per line."""

    def __init__(self, fmt: str = "json") -> None:
        super().__init__(sys.stderr)
        self.setFormatter(LineFormatter(fmt))


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Route structlog and every stdlib logger through one root handler (idempotent)."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.stdlib.add_logger_name,
            _timestamper(),
            structlog.processors.format_exc_info,
            _Rendered(fmt),
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        cache_logger_on_first_use=True,
    )
    root = logging.getLogger()
    ours = [handler for handler in root.handlers if isinstance(handler, LogHandler)]
    if ours:
        for handler in ours:
            handler.setFormatter(LineFormatter(fmt))
    else:
        root.addHandler(LogHandler(fmt))
    root.setLevel(level)
    # Alembic narrates every connection it inspects at INFO; what it applied is logged by
    # the caller (migration.applied), and its warnings still come through.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLevelName(level)))
    logging.captureWarnings(True)


def uvicorn_log_config(level: str = "INFO", fmt: str = "json") -> dict[str, Any]:
    """uvicorn's ``log_config``: its loggers keep no handlers of their own and propagate to
    the root handler above, in the supervisor and in every worker process it spawns."""
    passthrough = {"handlers": [], "level": level, "propagate": True}
    quiet = logging.getLevelName(max(logging.WARNING, logging.getLevelName(level)))
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"marketgraph": {"()": "infra.logging.LogHandler", "fmt": fmt}},
        "root": {"handlers": ["marketgraph"], "level": level},
        "loggers": {
            "uvicorn": passthrough,
            "uvicorn.error": passthrough,
            "uvicorn.access": passthrough,
            # Set here too: workers import Alembic (which logs as it loads) before the app
            # configures logging.
            "alembic": {"level": quiet},
        },
    }

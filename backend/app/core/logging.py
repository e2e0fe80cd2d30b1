"""Log output: one JSON object per line in staging and production, readable lines in local.

`configure_logging()` installs one handler on the root logger (stderr, level from LOG_LEVEL) and
routes uvicorn's own loggers through it; uvicorn's access log is switched off because
app.api.context_middleware writes one access line per request itself. Every record made during a
request gets its request id and user id (a LogRecord factory), whichever handler formats it.

Nothing here logs headers, tokens, passwords or bodies: callers pass only the fields they mean to
(`extra={...}`).
"""

import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from app.core import request_context

if TYPE_CHECKING:
    from app.core.config import Settings

# Attributes every LogRecord has; anything else on a record came from `extra=` and is logged.
# uvicorn adds `color_message` (the message with terminal colours) to its records: not for logs.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}
# The server never migrates (prestart does); alembic's INFO lines would come with every /db-health.
QUIET = {"alembic": logging.WARNING}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record's own fields (request id, user id and whatever `extra=` passed), None left out."""
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD and v is not None}


def _stamp_request(factory: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    """Wrap a LogRecord factory: records made during a request carry its request id and user id."""

    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        context = request_context.current()
        if context is not None:
            record.request_id = context.request_id
            record.user_id = context.user_id
        return record

    make.incident_desk = True  # type: ignore[attr-defined]
    return make


class JsonFormatter(logging.Formatter):
    """`{"timestamp", "level", "logger", "message", ...fields, "exception"?}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_fields(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    """`12:34:56.789 INFO    app.access  GET /api/v1/tickets/ 201  [request_id=... duration_ms=...]`"""

    def __init__(self) -> None:
        super().__init__(datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        when = f"{self.formatTime(record, self.datefmt)}.{int(record.msecs):03d}"
        # Escaped, so that control characters from a client (in a path, say) cannot forge lines.
        message = record.getMessage().encode("unicode_escape").decode("ascii")
        fields = " ".join(
            f"{k}={v}" if isinstance(v, int | float) else f"{k}={v!r}" for k, v in _fields(record).items()
        )
        line = f"{when} {record.levelname:<7} {record.name}  {message}"
        if fields:
            line = f"{line}  [{fields}]"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


def _is_ours(handler: logging.Handler) -> bool:
    return getattr(handler, "incident_desk", False) is True


def make_handler(log_format: str) -> logging.Handler:
    """`json` or `console`."""
    # The process's own stderr: code that swaps sys.stderr for a while (a test runner, a CLI runner)
    # neither captures nor closes it.
    handler = logging.StreamHandler(sys.__stderr__ or sys.stderr)
    handler.incident_desk = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if log_format == "json" else ConsoleFormatter())
    return handler


def log_format(settings: "Settings") -> str:
    """LOG_FORMAT, with `auto` decided: readable lines in local mode, JSON otherwise."""
    if settings.LOG_FORMAT != "auto":
        return settings.LOG_FORMAT
    return "console" if settings.ENVIRONMENT == "local" else "json"


def configure_logging(level: str, log_format: str) -> None:
    """Idempotent: replaces the handler a previous call installed and leaves any other alone."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if _is_ours(h)]:
        root.removeHandler(handler)
    root.addHandler(make_handler(log_format))
    root.setLevel(level)
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "incident_desk", False):
        logging.setLogRecordFactory(_stamp_request(factory))
    # uvicorn's server messages go through our handler; its access log would duplicate ours.
    for name in ("uvicorn", "uvicorn.error"):
        server_logger = logging.getLogger(name)
        server_logger.handlers.clear()
        server_logger.propagate = True
        server_logger.disabled = False
    for name, quiet_level in QUIET.items():
        logging.getLogger(name).setLevel(max(quiet_level, logging.getLevelNamesMapping()[level]))
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    access.disabled = True

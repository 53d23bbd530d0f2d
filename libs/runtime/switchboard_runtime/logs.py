"""Structured JSON logs on stdout, one object per line, stamped with request and trace ids.

Every line carries `ts` (RFC 3339, UTC), `level`, `logger`, `msg` and `service`, then
`request_id`, `trace_id` and `span_id` when known, then whatever the call passed as `extra=`.
An exception is written as `error_type` and a short `error` message: tracebacks can leak
request data and secrets into log storage, so they are only printed when `tracebacks=True`
(the `LOG_TRACEBACKS` setting, meant for a developer's laptop).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from opentelemetry import trace

from switchboard_runtime.request_context import request_id_var

__all__ = ["LOG_LEVELS", "JsonFormatter", "configure_logging", "request_id_var", "short_error"]

LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# The longest exception message kept in a log line; the start says what went wrong, the rest
# is usually an echo of input that has no business in the logs.
_MAX_ERROR_CHARS: Final = 200

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRIBUTES: Final = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None))
) | {"message", "asctime", "taskName"}

_RESERVED_KEYS: Final = frozenset(
    {"ts", "level", "logger", "msg", "service", "request_id", "trace_id", "span_id"}
)


def short_error(error: BaseException) -> str:
    """The first line of an exception's message, cut to a length fit for a log line."""
    text = str(error).strip()
    first_line = text.splitlines()[0] if text else ""
    if len(first_line) > _MAX_ERROR_CHARS:
        return first_line[: _MAX_ERROR_CHARS - 3] + "..."
    return first_line


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line."""

    def __init__(self, service: str, *, tracebacks: bool = False) -> None:
        super().__init__()
        self._service = service
        self._tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "service": self._service,
        }
        request_id = request_id_var.get()
        if request_id is not None:
            entry["request_id"] = request_id
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            entry["trace_id"] = trace.format_trace_id(span_context.trace_id)
            entry["span_id"] = trace.format_span_id(span_context.span_id)
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                # An extra field must not overwrite the envelope a log pipeline indexes on.
                entry[f"extra_{key}" if key in _RESERVED_KEYS else key] = value
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            entry["error_type"] = type(error).__name__
            entry["error"] = short_error(error)
            if self._tracebacks:
                entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class _StdoutHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever `sys.stdout` is at the time of the call.

    Binding the stream once would keep writing to a replaced stdout (test capture, a
    daemonising wrapper) after it was closed.
    """

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


def configure_logging(service: str, level: str, *, tracebacks: bool = False) -> None:
    """Route all logging through one JSON handler on stdout at `level`.

    Calling it again replaces the handler it installed before, so tests and embedded apps
    can reconfigure without stacking handlers.
    """
    normalized = level.upper()
    if normalized not in LOG_LEVELS:
        raise ValueError(f"unknown log level {level!r}; expected one of {', '.join(LOG_LEVELS)}")
    root = logging.getLogger()
    for existing in list(root.handlers):
        if isinstance(existing, _StdoutHandler):
            root.removeHandler(existing)
    handler = _StdoutHandler()
    handler.setFormatter(JsonFormatter(service, tracebacks=tracebacks))
    root.addHandler(handler)
    root.setLevel(normalized)

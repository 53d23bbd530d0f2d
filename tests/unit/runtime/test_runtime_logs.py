"""Logs are JSON objects, one per line, carrying the request id and the trace ids."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from switchboard_runtime.logs import configure_logging, request_id_var

pytestmark = pytest.mark.usefixtures("restore_logging")


def _lines(captured: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in captured.splitlines() if line]


def test_a_log_line_is_one_json_object_with_the_envelope(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("identity", "INFO")

    logging.getLogger("identity.users").info("user %s created", "u-1", extra={"tenant_id": "t-9"})

    out = capsys.readouterr().out
    assert out.count("\n") == 1
    (line,) = _lines(out)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["ts"])
    assert line["level"] == "INFO"
    assert line["logger"] == "identity.users"
    assert line["msg"] == "user u-1 created"
    assert line["service"] == "identity"
    assert line["tenant_id"] == "t-9"
    assert "request_id" not in line
    assert "trace_id" not in line


def test_messages_below_the_configured_level_are_dropped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("identity", "warning")

    logging.getLogger("identity").info("chatter")
    logging.getLogger("identity").warning("worth reading")

    assert [line["msg"] for line in _lines(capsys.readouterr().out)] == ["worth reading"]


def test_the_request_id_and_the_current_trace_are_stamped_on_each_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("gateway", "INFO")
    tracer = TracerProvider().get_tracer("test")

    token = request_id_var.set("req-42")
    try:
        with tracer.start_as_current_span("handle") as span:
            logging.getLogger("gateway").info("inside a request")
    finally:
        request_id_var.reset(token)

    (line,) = _lines(capsys.readouterr().out)
    context = span.get_span_context()
    assert line["request_id"] == "req-42"
    assert line["trace_id"] == trace.format_trace_id(context.trace_id)
    assert line["span_id"] == trace.format_span_id(context.span_id)
    assert len(line["trace_id"]) == 32


def test_an_exception_is_logged_as_its_type_and_first_line_without_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("conversation", "INFO")

    try:
        raise ConnectionError("database went away\nwith a long second line of internals")
    except ConnectionError:
        logging.getLogger("conversation").exception("could not store message")

    out = capsys.readouterr().out
    (line,) = _lines(out)
    assert line["level"] == "ERROR"
    assert line["error_type"] == "ConnectionError"
    assert line["error"] == "database went away"
    assert "Traceback" not in out
    assert "internals" not in out


def test_tracebacks_are_printed_only_when_switched_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("conversation", "INFO", tracebacks=True)

    try:
        raise ValueError("bad")
    except ValueError:
        logging.getLogger("conversation").exception("failed")

    (line,) = _lines(capsys.readouterr().out)
    assert line["traceback"].startswith("Traceback (most recent call last)")


def test_extra_fields_cannot_overwrite_the_envelope(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("identity", "INFO")

    logging.getLogger("identity").info("hello", extra={"service": "spoofed", "level": "x"})

    (line,) = _lines(capsys.readouterr().out)
    assert line["service"] == "identity"
    assert line["level"] == "INFO"
    assert line["extra_service"] == "spoofed"


def test_configuring_twice_does_not_duplicate_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("identity", "INFO")
    configure_logging("identity", "INFO")

    logging.getLogger("identity").info("once")

    assert len(_lines(capsys.readouterr().out)) == 1

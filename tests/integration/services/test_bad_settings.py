"""A service started with a malformed or missing setting stops at once, naming the setting."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SERVICES = ["gateway", "identity", "conversation", "llm_router", "connectors"]


def _start(module: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.endswith(("_URL", "_PORT"))}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", module],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("module", SERVICES)
def test_a_malformed_port_stops_the_service_with_one_line_naming_it(module: str) -> None:
    result = _start(
        module,
        GRPC_PORT="fifty",
        DATABASE_URL="postgresql://localhost/x",
        REDIS_URL="redis://localhost:1",
        NATS_URL="nats://localhost:1",
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "GRPC_PORT" in lines[0]
    assert "fifty" in lines[0]
    assert result.stdout == ""


@pytest.mark.parametrize("module", ["identity", "conversation", "connectors"])
def test_a_missing_database_url_is_named_and_no_secret_is_echoed(module: str) -> None:
    result = _start(module, NATS_URL="nats://user:hunter2-secret@localhost:1")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "DATABASE_URL: required but not set" in line
    assert "hunter2" not in result.stderr + result.stdout


def test_a_malformed_boolean_names_the_variable() -> None:
    result = _start("llm_router", REDIS_URL="redis://localhost:1", LOG_TRACEBACKS="perhaps")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("llm-router: ")
    assert "LOG_TRACEBACKS" in line

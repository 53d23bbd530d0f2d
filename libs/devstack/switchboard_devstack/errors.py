"""Errors raised by the developer stack.

DevstackError
├── EngineStartError      an engine or service did not become ready (carries its last log lines)
├── EngineStopError       a process survived every attempt to stop it
├── EnvoyConfigError      `envoy --mode validate` rejected a generated config
└── ServiceDiedError      a supervised child exited while the stack was running
"""

from __future__ import annotations

from collections.abc import Sequence


class DevstackError(Exception):
    """Base class for everything the developer stack raises on purpose."""


def _with_log(message: str, log_lines: Sequence[str]) -> str:
    if not log_lines:
        return message
    shown = "\n".join(f"    {line}" for line in log_lines)
    return f"{message}\n  last output:\n{shown}"


class EngineStartError(DevstackError):
    """A child process did not become ready; the message ends with its last output lines."""

    def __init__(self, name: str, reason: str, log_lines: Sequence[str] = ()) -> None:
        super().__init__(_with_log(f"{name}: {reason}", log_lines))
        self.name = name
        self.reason = reason
        self.log_lines = list(log_lines)


class EngineStopError(DevstackError):
    """A child process (or a daemon it started) is still alive after stop."""


class EnvoyConfigError(DevstackError):
    """Envoy rejected a config; the message is Envoy's own."""


class ServiceDiedError(DevstackError):
    """A supervised child exited on its own while the stack was up."""

    def __init__(self, name: str, returncode: int | None, log_lines: Sequence[str] = ()) -> None:
        super().__init__(_with_log(f"{name} exited unexpectedly with code {returncode}", log_lines))
        self.name = name
        self.returncode = returncode
        self.log_lines = list(log_lines)

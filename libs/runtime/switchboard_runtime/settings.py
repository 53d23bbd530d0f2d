"""Typed service settings read from environment variables, with one-line errors.

A settings class is a frozen dataclass deriving from `Settings` (or `ServiceSettings`, which
adds the fields every service has). Each field is read from the variable named after it in
upper case, or from `field(metadata={"env": "NAME"})`::

    @dataclass(frozen=True)
    class IdentitySettings(ServiceSettings):
        grpc_port: int = 50052
        database_url: str = field(default=REQUIRED, metadata={"secret": True})

Every field has a default, because a dataclass field without one cannot follow the defaulted
fields of `ServiceSettings`. A field that must come from the environment says so with the
`REQUIRED` sentinel as its default: `load_settings` reports it as missing, and constructing
the class by hand without it fails too.

Supported types: str, int, float, bool (true/false, 1/0, yes/no, on/off), pathlib.Path,
tuple[str, ...] (comma-separated) and `X | None` of those. An empty variable counts as unset,
as `FOO=` in a compose file or a Helm value usually means "not given".

Fields with `metadata={"secret": True}` are shown as `'***'` in `repr()` and `redacted()` and
their values are never echoed in error messages. Validation lives in `__post_init__`: raise
`InvalidSetting(field_name, problem)` (or any ValueError) and `load_settings` reports it like
a parse error, naming the variable. Subclasses with their own `__post_init__` must call
`super().__post_init__()`.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final, NoReturn, TypeVar

from switchboard_runtime.logs import LOG_LEVELS

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "REQUIRED",
    "InvalidSetting",
    "ServiceSettings",
    "Settings",
    "SettingsError",
    "env_name",
    "load_settings",
    "settings_or_exit",
]

T = TypeVar("T", bound="DataclassInstance")

_MASK: Final = "***"
_MAX_SHOWN_VALUE: Final = 40
_TRUE: Final = frozenset({"true", "1", "yes", "on"})
_FALSE: Final = frozenset({"false", "0", "no", "off"})


class _Required:
    """Sentinel type for a setting without a usable default."""

    def __repr__(self) -> str:
        return "REQUIRED"


#: Default of a field that must be set in the environment. Typed Any so it fits any field.
REQUIRED: Final[Any] = _Required()


class SettingsError(ValueError):
    """Settings could not be loaded; the message is one line naming each bad variable."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class InvalidSetting(ValueError):
    """Raised by a `__post_init__` hook: `field` failed validation for the reason `problem`."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def env_name(field: dataclasses.Field[Any]) -> str:
    """The environment variable a settings field is read from."""
    override = field.metadata.get("env")
    return str(override) if override else field.name.upper()


def _is_secret(field: dataclasses.Field[Any]) -> bool:
    return bool(field.metadata.get("secret", False))


def _is_required(field: dataclasses.Field[Any]) -> bool:
    no_default = field.default is dataclasses.MISSING and (
        field.default_factory is dataclasses.MISSING
    )
    return no_default or field.default is REQUIRED


@dataclasses.dataclass(frozen=True)
class Settings:
    """Base of every settings class: masks secrets in repr and rejects unset required fields."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # @dataclass writes a __repr__ that prints every value, but it leaves alone a __repr__
        # already in the class body; putting ours there keeps secrets masked in subclasses.
        cls.__repr__ = Settings.__repr__  # type: ignore[method-assign]

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            if getattr(self, field.name) is REQUIRED:
                raise InvalidSetting(field.name, "required but not set")

    def redacted(self) -> dict[str, object]:
        """Field values with secrets masked, for a startup log line."""
        shown: dict[str, object] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            shown[field.name] = _MASK if _is_secret(field) and value is not None else value
        return shown

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={value!r}" for name, value in self.redacted().items())
        return f"{type(self).__name__}({inner})"


@dataclasses.dataclass(frozen=True)
class ServiceSettings(Settings):
    """Settings every Switchboard service has; services subclass it and override defaults."""

    #: Name used in error lines before logging is configured; services set their own.
    service_name: ClassVar[str] = "service"

    grpc_host: str = "0.0.0.0"
    #: Port of the gRPC server; 0 binds a free port (tests).
    grpc_port: int = 50051
    metrics_host: str = "0.0.0.0"
    #: Port of the Prometheus endpoint; 0 disables it.
    metrics_port: int = 9464
    log_level: str = "INFO"
    #: Print tracebacks in logs; for a developer's laptop, never production.
    log_tracebacks: bool = False
    #: How long in-flight calls may run after SIGTERM before they are cancelled.
    shutdown_grace_seconds: float = 10.0
    #: OTLP/gRPC collector address, e.g. http://otel-collector:4317; unset disables export.
    otel_exporter_otlp_endpoint: str | None = None
    #: Create spans (and trace ids in logs) even with no collector to export them to; unset:
    #: only when OTEL_EXPORTER_OTLP_ENDPOINT is set.
    tracing: bool | None = None
    service_version: str = "dev"

    @property
    def tracing_on(self) -> bool:
        return self.tracing if self.tracing is not None else bool(self.otel_exporter_otlp_endpoint)

    def __post_init__(self) -> None:
        super().__post_init__()
        for port_field in ("grpc_port", "metrics_port"):
            port = getattr(self, port_field)
            if not 0 <= port <= 65535:
                raise InvalidSetting(port_field, f"expected a port from 0 to 65535, got {port}")
        if self.log_level.upper() not in LOG_LEVELS:
            raise InvalidSetting(
                "log_level", f"expected one of {', '.join(LOG_LEVELS)}, got {self.log_level!r}"
            )
        if self.shutdown_grace_seconds < 0:
            raise InvalidSetting(
                "shutdown_grace_seconds",
                f"expected zero or more seconds, got {self.shutdown_grace_seconds}",
            )


def _shown(raw: str, *, secret: bool) -> str:
    if secret:
        return "a value that is not shown (secret)"
    if len(raw) > _MAX_SHOWN_VALUE:
        raw = raw[: _MAX_SHOWN_VALUE - 3] + "..."
    return repr(raw)


def _parse_int(raw: str) -> int:
    return int(raw, 10)


def _parse_bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(raw)


def _parse_str_tuple(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


# parser and the words that describe what it expected
_PARSERS: Final[dict[object, tuple[Callable[[str], object], str]]] = {
    str: (str, "a string"),
    int: (_parse_int, "an integer"),
    float: (float, "a number"),
    bool: (_parse_bool, "true or false"),
    Path: (Path, "a path"),
    tuple[str, ...]: (_parse_str_tuple, "a comma-separated list"),
}


def _parser_for(owner: type, name: str, hint: object) -> tuple[Callable[[str], object], str]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(members) == 1 and len(typing.get_args(hint)) == 2:
            hint = members[0]
    try:
        return _PARSERS[hint]
    except KeyError:
        raise TypeError(f"{owner.__name__}.{name}: unsupported settings type {hint!r}") from None


def load_settings(cls: type[T], environ: Mapping[str, str] | None = None) -> T:
    """Build `cls` from `environ` (default `os.environ`); raise SettingsError on bad input."""
    env = os.environ if environ is None else environ
    hints = typing.get_type_hints(cls)
    values: dict[str, object] = {}
    problems: list[str] = []
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        variable = env_name(field)
        parse, expected = _parser_for(cls, field.name, hints[field.name])
        raw = env.get(variable, "").strip()
        if not raw:
            if _is_required(field):
                problems.append(f"{variable}: required but not set")
            continue
        try:
            values[field.name] = parse(raw)
        except ValueError:
            problems.append(
                f"{variable}: expected {expected}, got {_shown(raw, secret=_is_secret(field))}"
            )
    if problems:
        raise SettingsError(problems)
    try:
        return cls(**values)
    except InvalidSetting as error:
        variables = {f.name: env_name(f) for f in dataclasses.fields(cls)}
        variable = variables.get(error.field, error.field)
        raise SettingsError([f"{variable}: {error.problem}"]) from None
    except ValueError as error:
        raise SettingsError([f"{cls.__name__}: {error}"]) from None


def settings_or_exit(
    cls: type[T], *, service: str | None = None, environ: Mapping[str, str] | None = None
) -> T:
    """Load settings, or print one line to stderr and exit with status 2 (bad configuration).

    `service` names the program in the line; it defaults to the class's `service_name`.
    """
    try:
        return load_settings(cls, environ)
    except SettingsError as error:
        _exit_with(service or str(getattr(cls, "service_name", cls.__name__)), error)


def _exit_with(service: str, error: SettingsError) -> NoReturn:
    label = "invalid settings" if len(error.problems) > 1 else "invalid setting"
    print(f"{service}: {label}: {error}", file=sys.stderr, flush=True)
    sys.exit(2)

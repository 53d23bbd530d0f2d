"""Settings are read from environment variables with types, defaults and one-line errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from switchboard_runtime.settings import (
    REQUIRED,
    InvalidSetting,
    ServiceSettings,
    SettingsError,
    load_settings,
)


@dataclass(frozen=True)
class ExampleSettings(ServiceSettings):
    grpc_port: int = 50099
    database_url: str = field(default=REQUIRED, metadata={"secret": True})
    sample_ratio: float = 0.5
    debug_mode: bool = False
    data_dir: Path = Path("/var/lib/example")
    allowed_origins: tuple[str, ...] = ()
    nickname: str | None = None
    api_token: str | None = field(
        default=None, metadata={"env": "EXAMPLE_API_TOKEN", "secret": True}
    )
    retries: int | None = None


REQUIRED_ONLY = {"DATABASE_URL": "postgresql://app:hunter2@db/app"}


def test_every_supported_type_is_parsed_from_its_variable() -> None:
    settings = load_settings(
        ExampleSettings,
        {
            **REQUIRED_ONLY,
            "GRPC_PORT": "6000",
            "SAMPLE_RATIO": "0.25",
            "DEBUG_MODE": "yes",
            "DATA_DIR": "/tmp/data",
            "ALLOWED_ORIGINS": "https://a.example, https://b.example,",
            "NICKNAME": "bob",
            "RETRIES": "3",
            "SHUTDOWN_GRACE_SECONDS": "2.5",
        },
    )

    assert settings.grpc_port == 6000
    assert settings.sample_ratio == 0.25
    assert settings.debug_mode is True
    assert settings.data_dir == Path("/tmp/data")
    assert settings.allowed_origins == ("https://a.example", "https://b.example")
    assert settings.nickname == "bob"
    assert settings.retries == 3
    assert settings.shutdown_grace_seconds == 2.5


def test_unset_and_empty_variables_fall_back_to_the_subclass_defaults() -> None:
    settings = load_settings(ExampleSettings, {**REQUIRED_ONLY, "NICKNAME": "", "GRPC_PORT": " "})

    assert settings.grpc_port == 50099
    assert settings.nickname is None
    assert settings.log_level == "INFO"
    assert settings.metrics_port == 9464
    assert settings.otel_exporter_otlp_endpoint is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("TRUE", True), ("1", True), ("Yes", True), ("on", True), ("false", False), ("0", False)],
)
def test_booleans_accept_the_usual_spellings_in_any_case(raw: str, expected: bool) -> None:
    settings = load_settings(ExampleSettings, {**REQUIRED_ONLY, "DEBUG_MODE": raw})

    assert settings.debug_mode is expected


def test_a_missing_required_setting_is_named() -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(ExampleSettings, {})

    assert str(raised.value) == "DATABASE_URL: required but not set"


def test_a_malformed_number_names_the_variable_and_the_value() -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(ExampleSettings, {**REQUIRED_ONLY, "GRPC_PORT": "abc"})

    assert str(raised.value) == "GRPC_PORT: expected an integer, got 'abc'"


def test_every_problem_is_reported_at_once_on_one_line() -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(ExampleSettings, {"SAMPLE_RATIO": "half", "DEBUG_MODE": "maybe"})

    message = str(raised.value)
    assert "\n" not in message
    assert message == (
        "DATABASE_URL: required but not set; "
        "SAMPLE_RATIO: expected a number, got 'half'; "
        "DEBUG_MODE: expected true or false, got 'maybe'"
    )


def test_validation_in_post_init_is_reported_against_the_variable() -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(ExampleSettings, {**REQUIRED_ONLY, "GRPC_PORT": "70000"})

    assert str(raised.value) == "GRPC_PORT: expected a port from 0 to 65535, got 70000"


def test_an_unknown_log_level_is_rejected() -> None:
    with pytest.raises(SettingsError, match=r"^LOG_LEVEL: expected one of DEBUG, INFO"):
        load_settings(ExampleSettings, {**REQUIRED_ONLY, "LOG_LEVEL": "chatty"})


def test_a_field_can_read_a_differently_named_variable() -> None:
    settings = load_settings(ExampleSettings, {**REQUIRED_ONLY, "EXAMPLE_API_TOKEN": "tok"})

    assert settings.api_token == "tok"


def test_secret_values_never_appear_in_repr_or_in_errors() -> None:
    settings = load_settings(ExampleSettings, {**REQUIRED_ONLY, "EXAMPLE_API_TOKEN": "s3cr3t"})

    shown = repr(settings)
    assert "hunter2" not in shown
    assert "s3cr3t" not in shown
    assert "database_url='***'" in shown
    assert "grpc_port=50099" in shown
    assert settings.redacted()["api_token"] == "***"

    @dataclass(frozen=True)
    class SecretNumber(ServiceSettings):
        pin: int = field(default=0, metadata={"secret": True})

    with pytest.raises(SettingsError) as raised:
        load_settings(SecretNumber, {"PIN": "12x4"})
    assert "12x4" not in str(raised.value)
    assert str(raised.value).startswith("PIN: expected an integer")


def test_building_settings_by_hand_without_a_required_field_fails() -> None:
    with pytest.raises(InvalidSetting, match="database_url: required but not set"):
        ExampleSettings()


def test_an_unsupported_field_type_is_a_programming_error() -> None:
    @dataclass(frozen=True)
    class Odd(ServiceSettings):
        weights: list[int] = field(default_factory=list)

    with pytest.raises(TypeError, match=r"Odd\.weights: unsupported settings type"):
        load_settings(Odd, {})


def test_settings_or_exit_prints_one_line_and_exits_with_status_2() -> None:
    script = textwrap.dedent(
        """
        from switchboard_runtime.settings import ServiceSettings, settings_or_exit
        settings_or_exit(ServiceSettings, service="identity")
        print("should not get here")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={"GRPC_PORT": "abc", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == "identity: invalid setting: GRPC_PORT: expected an integer, got 'abc'\n"

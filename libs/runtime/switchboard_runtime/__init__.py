"""Switchboard's shared service runtime: settings, logs, gRPC server and clients, data engines.

Import what a service needs from here; the submodules are an implementation detail that may be
reorganised. See libs/runtime/README.md.
"""

from __future__ import annotations

from switchboard_runtime.channels import create_channel
from switchboard_runtime.grpc_errors import (
    abort_resource_exhausted,
    abort_with_details,
    abort_with_field_violations,
    field_violations_of,
    rich_status_of,
)
from switchboard_runtime.interceptors import (
    AccessLogInterceptor,
    CallInfo,
    DeadlineInterceptor,
    RequestIdInterceptor,
    ValidationInterceptor,
    WrappingInterceptor,
    wrap_handler,
)
from switchboard_runtime.jetstream import (
    Consumer,
    Delivery,
    connect_nats,
    ensure_durable_consumer,
    ensure_stream,
    publish,
)
from switchboard_runtime.logs import configure_logging
from switchboard_runtime.metrics import MetricsEndpoint
from switchboard_runtime.postgres import (
    MigrationError,
    apply_migrations,
    create_pool,
    database_dsn,
    ensure_database,
)
from switchboard_runtime.redaction import redact_url
from switchboard_runtime.redis_client import connect_redis
from switchboard_runtime.request_context import (
    REQUEST_ID_HEADER,
    deadline_var,
    remaining_time,
    request_id_var,
)
from switchboard_runtime.server import ServiceApp, StartupError
from switchboard_runtime.settings import (
    REQUIRED,
    InvalidSetting,
    ServiceSettings,
    Settings,
    SettingsError,
    load_settings,
    settings_or_exit,
)
from switchboard_runtime.tracing import (
    client_interceptors,
    configure_tracing,
    server_interceptor,
    shutdown_tracing,
)

__all__ = [
    "REQUEST_ID_HEADER",
    "REQUIRED",
    "AccessLogInterceptor",
    "CallInfo",
    "Consumer",
    "DeadlineInterceptor",
    "Delivery",
    "InvalidSetting",
    "MetricsEndpoint",
    "MigrationError",
    "RequestIdInterceptor",
    "ServiceApp",
    "ServiceSettings",
    "Settings",
    "SettingsError",
    "StartupError",
    "ValidationInterceptor",
    "WrappingInterceptor",
    "abort_resource_exhausted",
    "abort_with_details",
    "abort_with_field_violations",
    "apply_migrations",
    "client_interceptors",
    "configure_logging",
    "configure_tracing",
    "connect_nats",
    "connect_redis",
    "create_channel",
    "create_pool",
    "database_dsn",
    "deadline_var",
    "ensure_database",
    "ensure_durable_consumer",
    "ensure_stream",
    "field_violations_of",
    "load_settings",
    "publish",
    "redact_url",
    "remaining_time",
    "request_id_var",
    "rich_status_of",
    "server_interceptor",
    "settings_or_exit",
    "shutdown_tracing",
    "wrap_handler",
]

"""Composition root of the connectors service: builds the real adapters and wires them in."""

from __future__ import annotations

from pathlib import Path

from connectors.settings import ConnectorsSettings
from switchboard.connectors.v1 import connectors_pb2
from switchboard_runtime.auth_interceptor import AuthInterceptor
from switchboard_runtime.datastores import JetStreamBus, PostgresDatabase, attach
from switchboard_runtime.event_streams import CONNECTORS
from switchboard_runtime.identity_client import IdentityClient
from switchboard_runtime.server import ServiceApp
from switchboard_runtime.settings import settings_or_exit

MIGRATIONS = Path(__file__).parent / "migrations"


def build_app(settings: ConnectorsSettings) -> ServiceApp:
    identity = IdentityClient.from_settings(settings)
    app = ServiceApp(
        name="connectors", settings=settings, extra_interceptors=[AuthInterceptor(identity)]
    )
    attach(app, identity)
    attach(app, PostgresDatabase(settings.database_url, migrations=MIGRATIONS))
    attach(app, JetStreamBus(settings.nats_url, client_name="connectors", streams=[CONNECTORS]))
    for service in connectors_pb2.DESCRIPTOR.services_by_name.values():
        app.add_unimplemented(service)
    return app


def main() -> None:
    build_app(settings_or_exit(ConnectorsSettings)).run_forever()

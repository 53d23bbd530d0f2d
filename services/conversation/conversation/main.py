"""Composition root of the conversation service: builds the real adapters and wires them in."""

from __future__ import annotations

from pathlib import Path

from conversation.settings import ConversationSettings
from switchboard.conversation.v1 import conversation_pb2
from switchboard_runtime.auth_interceptor import AuthInterceptor
from switchboard_runtime.datastores import JetStreamBus, PostgresDatabase, attach
from switchboard_runtime.event_streams import CONVERSATION
from switchboard_runtime.identity_client import IdentityClient
from switchboard_runtime.server import ServiceApp
from switchboard_runtime.settings import settings_or_exit

MIGRATIONS = Path(__file__).parent / "migrations"


def build_app(settings: ConversationSettings) -> ServiceApp:
    identity = IdentityClient.from_settings(settings)
    app = ServiceApp(
        name="conversation", settings=settings, extra_interceptors=[AuthInterceptor(identity)]
    )
    attach(app, identity)
    attach(app, PostgresDatabase(settings.database_url, migrations=MIGRATIONS))
    attach(app, JetStreamBus(settings.nats_url, client_name="conversation", streams=[CONVERSATION]))
    app.add_unimplemented(conversation_pb2.DESCRIPTOR.services_by_name["ConversationService"])
    return app


def main() -> None:
    build_app(settings_or_exit(ConversationSettings)).run_forever()

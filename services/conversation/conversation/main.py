"""Composition root of the conversation service: builds the real adapters and wires them in."""

from __future__ import annotations

import functools
from pathlib import Path

from conversation.bots import Bots
from conversation.channel_consumers import ChannelEventConsumers
from conversation.channel_events import ChannelEvents
from conversation.conversations import Conversations
from conversation.live_bus import NatsLiveEvents
from conversation.llm_client import RouterReplyModel
from conversation.message_log import MessageLog
from conversation.messages import Messages
from conversation.replies import Replies
from conversation.request_decoding import add_service
from conversation.servicer import ConversationServicer
from conversation.settings import ConversationSettings
from conversation.watch import Watches
from switchboard.conversation.v1 import conversation_pb2
from switchboard_runtime.auth_interceptor import AuthInterceptor
from switchboard_runtime.clock import Clock, SystemClock
from switchboard_runtime.datastores import JetStreamBus, PostgresDatabase, attach
from switchboard_runtime.event_streams import CONVERSATION
from switchboard_runtime.identity_client import IdentityClient
from switchboard_runtime.outbox import OutboxRelay
from switchboard_runtime.postgres import migration_lock_id
from switchboard_runtime.server import ServiceApp
from switchboard_runtime.settings import settings_or_exit

MIGRATIONS = Path(__file__).parent / "migrations"
SERVICE = conversation_pb2.DESCRIPTOR.services_by_name["ConversationService"]


def build_app(settings: ConversationSettings, *, clock: Clock | None = None) -> ServiceApp:
    clock = clock or SystemClock()
    identity = IdentityClient.from_settings(settings)
    app = ServiceApp(
        name="conversation", settings=settings, extra_interceptors=[AuthInterceptor(identity)]
    )
    attach(app, identity)
    database = attach(
        app,
        PostgresDatabase(
            settings.database_url,
            migrations=MIGRATIONS,
            max_connections=settings.database_pool_size,
        ),
    )
    bus = attach(
        app, JetStreamBus(settings.nats_url, client_name="conversation", streams=[CONVERSATION])
    )
    model = attach(
        app,
        RouterReplyModel(
            settings.llm_router_addr,
            tokens=identity.service_token,
            timeout_seconds=settings.reply_timeout_seconds,
        ),
    )
    live = NatsLiveEvents(lambda: bus.client)
    log = MessageLog(database, clock=clock)
    replies = Replies(database, log=log, model=model, live=live, clock=clock)
    # Registered after the database and NATS, so it runs before they close.
    app.add_shutdown(
        functools.partial(replies.close, grace_seconds=settings.reply_shutdown_grace_seconds)
    )
    if settings.outbox_relay_enabled:
        app.add_background(
            lambda: OutboxRelay(
                database.pool, bus.jetstream, lock_id=migration_lock_id("conversation-outbox")
            ).run(),
            name="outbox-relay",
        )
    consumers = ChannelEventConsumers(
        lambda: bus.jetstream,
        ChannelEvents(database, log=log, replies=replies, clock=clock),
        nak_delay_seconds=settings.consumer_nak_delay_seconds,
        bind_retry_seconds=settings.consumer_bind_retry_seconds,
    )
    app.add_background(consumers.run_inbound, name="inbound-messages")
    app.add_background(consumers.run_deliveries, name="delivery-updates")
    servicer = ConversationServicer(
        bots=Bots(database, clock=clock),
        conversations=Conversations(database, clock=clock),
        messages=Messages(database, log=log, replies=replies, clock=clock),
        watches=Watches(database, live=live, resync_seconds=settings.watch_resync_seconds),
    )
    app.add_service(functools.partial(add_service, service=SERVICE), servicer, SERVICE)
    return app


def main() -> None:
    build_app(settings_or_exit(ConversationSettings)).run_forever()

"""The conversation service's settings, read from the environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from switchboard_runtime.identity_client import IdentityClientSettings
from switchboard_runtime.settings import REQUIRED


@dataclass(frozen=True)
class ConversationSettings(IdentityClientSettings):
    service_name: ClassVar[str] = "conversation"

    grpc_port: int = 50053
    metrics_port: int = 9103
    database_url: str = field(default=REQUIRED, metadata={"secret": True})
    #: Connections in the Postgres pool; every send holds one for its transaction.
    database_pool_size: int = 20
    nats_url: str = field(default=REQUIRED, metadata={"secret": True})
    llm_router_addr: str = "127.0.0.1:50054"
    #: Upper bound on generating one bot reply.
    reply_timeout_seconds: float = 120.0
    #: At shutdown, how long replies under way may finish before they are stored as
    #: interrupted.
    reply_shutdown_grace_seconds: float = 10.0
    #: A quiet watch re-reads Postgres this often, healing any live event NATS lost.
    watch_resync_seconds: float = 15.0
    #: A consumed event whose handling failed is redelivered after this long.
    consumer_nak_delay_seconds: float = 2.0
    #: How often to retry binding a consumer whose stream is not declared yet.
    consumer_bind_retry_seconds: float = 2.0
    #: Whether this replica publishes the event outbox. Every replica may (one leads at a
    #: time); turning it off takes a replica out of relaying, e.g. to test recovery of
    #: events committed by a process that died before publishing them.
    outbox_relay_enabled: bool = True

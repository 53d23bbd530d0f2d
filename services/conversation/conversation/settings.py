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
    nats_url: str = field(default=REQUIRED, metadata={"secret": True})
    llm_router_addr: str = "127.0.0.1:50054"

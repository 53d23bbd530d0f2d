"""The gateway's settings, read from the environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from switchboard_runtime.identity_client import IdentityClientSettings
from switchboard_runtime.settings import REQUIRED


@dataclass(frozen=True)
class GatewaySettings(IdentityClientSettings):
    service_name: ClassVar[str] = "gateway"

    grpc_port: int = 50051
    metrics_port: int = 9101
    #: Rate-limit buckets and the API-key cache.
    redis_url: str = field(default=REQUIRED, metadata={"secret": True})
    conversation_addr: str = "127.0.0.1:50053"
    llm_router_addr: str = "127.0.0.1:50054"
    connectors_addr: str = "127.0.0.1:50055"

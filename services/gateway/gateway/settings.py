"""The gateway's settings, read from the environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from gateway.rate_limits import Bucket
from switchboard.access.v1 import access_pb2
from switchboard_runtime.identity_client import IdentityClientSettings
from switchboard_runtime.settings import REQUIRED, InvalidSetting


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
    #: Where the JSON body check Envoy consults listens (0: off).
    body_check_port: int = 50061
    #: Token buckets as "RATE:BURST" (calls per second : largest burst), per principal; for
    #: sign-in calls also per client address and per email, for anonymous calls per address.
    rate_limit_read: str = "50:100"
    rate_limit_write: str = "20:40"
    rate_limit_auth: str = "1:10"
    rate_limit_generation: str = "5:10"
    rate_limit_webhook: str = "100:200"
    #: A tenant's bucket is this many times a principal's (all its users and keys together).
    rate_limit_tenant_factor: float = 5.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.rate_limit_buckets()
        if self.rate_limit_tenant_factor < 1:
            raise InvalidSetting("rate_limit_tenant_factor", "must be at least 1")

    def rate_limit_buckets(self) -> dict[int, Bucket]:
        by_class = {
            access_pb2.RATE_LIMIT_CLASS_READ: "rate_limit_read",
            access_pb2.RATE_LIMIT_CLASS_WRITE: "rate_limit_write",
            access_pb2.RATE_LIMIT_CLASS_AUTH: "rate_limit_auth",
            access_pb2.RATE_LIMIT_CLASS_GENERATION: "rate_limit_generation",
            access_pb2.RATE_LIMIT_CLASS_WEBHOOK: "rate_limit_webhook",
        }
        buckets: dict[int, Bucket] = {}
        for rate_class, name in by_class.items():
            try:
                buckets[rate_class] = Bucket.parse(getattr(self, name))
            except ValueError as error:
                raise InvalidSetting(name, str(error)) from error
        return buckets

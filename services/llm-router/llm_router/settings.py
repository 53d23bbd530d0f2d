"""The LLM router's settings, read from the environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from switchboard_runtime.identity_client import IdentityClientSettings
from switchboard_runtime.settings import REQUIRED


@dataclass(frozen=True)
class RouterSettings(IdentityClientSettings):
    service_name: ClassVar[str] = "llm-router"

    grpc_port: int = 50054
    metrics_port: int = 9104
    #: Shared breaker state, cool-downs and the retry budget.
    redis_url: str = field(default=REQUIRED, metadata={"secret": True})

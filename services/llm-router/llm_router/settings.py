"""The LLM router's settings, read from the environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from switchboard_runtime.identity_client import IdentityClientSettings
from switchboard_runtime.settings import REQUIRED


@dataclass(frozen=True)
class RouterSettings(IdentityClientSettings):
    service_name: ClassVar[str] = "llm-router"

    grpc_port: int = 50054
    metrics_port: int = 9104
    #: Shared breaker state, cool-downs and weight overrides.
    redis_url: str = field(default=REQUIRED, metadata={"secret": True})
    #: Prefix of the router's Redis keys; replicas sharing breakers share it.
    redis_key_prefix: str = "llm-router"
    #: The YAML file of model aliases and deployments (LLM_ROUTER_CONFIG); unset serves the
    #: built-in mock configuration. SIGHUP re-reads it.
    llm_router_config: Path | None = None

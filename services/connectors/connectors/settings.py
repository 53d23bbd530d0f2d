"""The connectors service's settings, read from the environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from switchboard_runtime.identity_client import IdentityClientSettings
from switchboard_runtime.settings import REQUIRED


@dataclass(frozen=True)
class ConnectorsSettings(IdentityClientSettings):
    service_name: ClassVar[str] = "connectors"

    grpc_port: int = 50055
    metrics_port: int = 9105
    database_url: str = field(default=REQUIRED, metadata={"secret": True})
    nats_url: str = field(default=REQUIRED, metadata={"secret": True})

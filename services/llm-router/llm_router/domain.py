"""The router's plain data: requests, replies, stream events and attempt reports.

Nothing here knows gRPC, Redis or any provider SDK; the servicer converts protos to and from
these, and providers turn them into their own wire formats.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CompletionRequest:
    """One call: the alias to route and the generation settings sent to whichever deployment."""

    model: str
    messages: tuple[ChatMessage, ...]
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    #: The inbound call's request id, sent upstream as `x-request-id`.
    request_id: str | None = None


class FinishReason(enum.Enum):
    UNSPECIFIED = 0
    STOP = 1
    LENGTH = 2
    CONTENT_FILTER = 3


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Completion:
    """A provider's whole reply."""

    text: str
    finish_reason: FinishReason
    usage: Usage


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of a streamed reply."""

    text: str


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """The end of a provider's stream."""

    finish_reason: FinishReason
    usage: Usage


StreamEvent = TextDelta | StreamEnd


class AttemptOutcome(enum.Enum):
    SUCCESS = 1
    ERROR = 2
    TIMEOUT = 3
    RATE_LIMITED = 4
    CANCELLED = 5
    REJECTED = 6


@dataclass(frozen=True, slots=True)
class AttemptReport:
    """How one upstream attempt of a call ended."""

    deployment_id: str
    outcome: AttemptOutcome
    latency_s: float
    hedge: bool = False
    error: str = ""


@dataclass(frozen=True, slots=True)
class CompletionResult:
    completion: Completion
    deployment_id: str
    provider_model: str
    attempts: tuple[AttemptReport, ...]


@dataclass(frozen=True, slots=True)
class StreamSummary:
    """The last item of a successful stream."""

    finish_reason: FinishReason
    usage: Usage
    deployment_id: str
    provider_model: str
    attempts: tuple[AttemptReport, ...]


class BreakerState(enum.Enum):
    CLOSED = 1
    OPEN = 2
    HALF_OPEN = 3


@dataclass(frozen=True, slots=True)
class DeploymentStatus:
    """One deployment as GetRouterStatus shows it (in-flight and latencies: this replica's)."""

    deployment_id: str
    alias: str
    provider: str
    provider_model: str
    weight: int
    breaker_state: BreakerState
    window_calls: int
    window_failures: int
    window_slow_calls: int
    in_flight: int
    latency_p50_s: float | None
    latency_p95_s: float | None
    first_token_p50_s: float | None
    first_token_p95_s: float | None
    cooldown_remaining_s: float
    open_remaining_s: float


@dataclass(frozen=True, slots=True)
class ModelInfo:
    alias: str
    deployment_ids: tuple[str, ...]

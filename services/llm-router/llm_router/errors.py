"""Errors of the LLM router: what a call can end with, and how one upstream attempt failed.

RouterError                      a call failed; the servicer maps each to one gRPC status
├── UnknownModelError            the alias is not configured            INVALID_ARGUMENT
├── InvalidRequestError          well-formed but unusable input         INVALID_ARGUMENT
├── UpstreamRejectedError        a provider refused the request (400)   INVALID_ARGUMENT
├── UnknownDeploymentError       an ops call names no deployment        NOT_FOUND
├── NoDeploymentAvailableError   every breaker open, every weight 0     UNAVAILABLE
├── UpstreamFailedError          every attempt failed                   UNAVAILABLE
├── StreamInterruptedError       failed after the first token           UNAVAILABLE
├── CallDeadlineExceededError    the caller's deadline came first       DEADLINE_EXCEEDED
└── CapacityExhaustedError       try again after retry_after_s          RESOURCE_EXHAUSTED
    ├── AllCoolingDownError      every deployment is in a 429 cool-down
    ├── RetryBudgetExhaustedError  a retry was needed, the budget is spent
    └── ConcurrencyLimitError    every deployment is at max_concurrency

ProviderError                    one attempt failed (providers raise these, nothing else)
├── RetryableProviderError       5xx, refused, reset, malformed, bad key or model:
│   │                            counts against the breaker, retried elsewhere
│   └── ProviderTimeoutError     per-attempt, first-token or idle timeout
├── ProviderRateLimitedError     429: cool-down for retry_after_s, retried elsewhere
└── ProviderRejectedError        400-class: the caller's request; not retried, not counted

ConfigError                      the YAML configuration is invalid (names the setting)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llm_router.domain import AttemptReport


class RouterError(Exception):
    """Base of the expected ways a call fails."""

    def __init__(self, message: str, *, attempts: Sequence[AttemptReport] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.attempts = tuple(attempts)


class UnknownModelError(RouterError):
    def __init__(self, alias: str) -> None:
        super().__init__(f"unknown model alias {alias!r} (see ListModels)")
        self.alias = alias


class InvalidRequestError(RouterError):
    def __init__(self, field: str, description: str) -> None:
        super().__init__(f"{field}: {description}")
        self.field = field
        self.description = description


class UpstreamRejectedError(RouterError):
    """The provider answered 400-class: retrying elsewhere would be refused the same way."""


class UnknownDeploymentError(RouterError):
    def __init__(self, deployment_id: str) -> None:
        super().__init__(f"no deployment {deployment_id!r} is configured")
        self.deployment_id = deployment_id


class NoDeploymentAvailableError(RouterError):
    pass


class UpstreamFailedError(RouterError):
    pass


class StreamInterruptedError(RouterError):
    """The stream failed after its first token: what was sent is all there is."""

    def __init__(
        self,
        message: str,
        *,
        produced_chars: int,
        deployment_id: str,
        attempts: Sequence[AttemptReport] = (),
    ) -> None:
        super().__init__(message, attempts=attempts)
        self.produced_chars = produced_chars
        self.deployment_id = deployment_id


class CallDeadlineExceededError(RouterError):
    pass


class CapacityExhaustedError(RouterError):
    def __init__(
        self, message: str, *, retry_after_s: float, attempts: Sequence[AttemptReport] = ()
    ) -> None:
        super().__init__(message, attempts=attempts)
        self.retry_after_s = retry_after_s


class AllCoolingDownError(CapacityExhaustedError):
    pass


class RetryBudgetExhaustedError(CapacityExhaustedError):
    pass


class ConcurrencyLimitError(CapacityExhaustedError):
    pass


class ProviderError(Exception):
    """One upstream attempt failed; the message is short and free of secrets."""


class RetryableProviderError(ProviderError):
    pass


class ProviderTimeoutError(RetryableProviderError):
    pass


class ProviderRateLimitedError(ProviderError):
    def __init__(self, message: str, *, retry_after_s: float | None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ProviderRejectedError(ProviderError):
    pass


class ConfigError(ValueError):
    """One line naming the setting, e.g. `models.default.deployments[1].weight: must be >= 0`."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}" if path else problem)
        self.path = path
        self.problem = problem

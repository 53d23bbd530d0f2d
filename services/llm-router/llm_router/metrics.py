"""The router's Prometheus metrics (the process-wide default registry, as the runtime's).

    llm_router_requests_total{method, alias, result}          calls, by how they ended
    llm_router_attempts_total{deployment, outcome, hedge}     upstream attempts
    llm_router_hedges_total{alias}, llm_router_hedges_won_total{alias}
    llm_router_retry_budget_exhausted_total{alias}            retries or hedges refused
    llm_router_breaker_transitions_total{deployment, state}   transitions this replica made
    llm_router_attempt_seconds{deployment}                    successful unary attempts
    llm_router_first_token_seconds{deployment}                successful streams
    llm_router_tokens_total{deployment, kind}                 prompt / completion tokens
    llm_router_config_reloads_total{result}                   SIGHUP reloads

Labelled children are cached: `labels()` costs a lock and a dict lookup per call otherwise.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Histogram

from llm_router.domain import AttemptOutcome, BreakerState

_LATENCY_BUCKETS: Final = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
)  # fmt: skip

REQUESTS: Final = Counter(
    "llm_router_requests_total", "Calls to the router, by result.", ("method", "alias", "result")
)
ATTEMPTS: Final = Counter(
    "llm_router_attempts_total",
    "Upstream attempts, by outcome.",
    ("deployment", "outcome", "hedge"),
)
HEDGES: Final = Counter("llm_router_hedges_total", "Hedged attempts sent.", ("alias",))
HEDGES_WON: Final = Counter(
    "llm_router_hedges_won_total", "Calls answered by a hedged attempt.", ("alias",)
)
BUDGET_EXHAUSTED: Final = Counter(
    "llm_router_retry_budget_exhausted_total",
    "Retries or hedges not sent because the retry budget was spent.",
    ("alias",),
)
BREAKER_TRANSITIONS: Final = Counter(
    "llm_router_breaker_transitions_total",
    "Circuit breaker transitions made by this replica.",
    ("deployment", "state"),
)
ATTEMPT_SECONDS: Final = Histogram(
    "llm_router_attempt_seconds",
    "Latency of successful unary attempts.",
    ("deployment",),
    buckets=_LATENCY_BUCKETS,
)
FIRST_TOKEN_SECONDS: Final = Histogram(
    "llm_router_first_token_seconds",
    "Time to first token of successful streams.",
    ("deployment",),
    buckets=_LATENCY_BUCKETS,
)
TOKENS: Final = Counter("llm_router_tokens_total", "Tokens used.", ("deployment", "kind"))
CONFIG_RELOADS: Final = Counter(
    "llm_router_config_reloads_total", "Configuration reloads, by result.", ("result",)
)


class RouterMetrics:
    """Cached children of the metrics above."""

    def __init__(self) -> None:
        self._children: dict[tuple[object, ...], object] = {}

    def _child(self, metric: Counter | Histogram, *labels: str) -> object:
        key = (metric, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def request(self, method: str, alias: str, result: str) -> None:
        self._counter(REQUESTS, method, alias, result).inc()

    def attempt(
        self, deployment: str, outcome: AttemptOutcome, *, hedge: bool, seconds: float | None
    ) -> None:
        self._counter(
            ATTEMPTS, deployment, outcome.name.lower(), "true" if hedge else "false"
        ).inc()
        if seconds is not None:
            self._histogram(ATTEMPT_SECONDS, deployment).observe(seconds)

    def first_token(self, deployment: str, seconds: float) -> None:
        self._histogram(FIRST_TOKEN_SECONDS, deployment).observe(seconds)

    def tokens(self, deployment: str, prompt: int, completion: int) -> None:
        if prompt:
            self._counter(TOKENS, deployment, "prompt").inc(prompt)
        if completion:
            self._counter(TOKENS, deployment, "completion").inc(completion)

    def hedge(self, alias: str) -> None:
        self._counter(HEDGES, alias).inc()

    def hedge_won(self, alias: str) -> None:
        self._counter(HEDGES_WON, alias).inc()

    def budget_exhausted(self, alias: str) -> None:
        self._counter(BUDGET_EXHAUSTED, alias).inc()

    def breaker_transition(self, deployment: str, state: BreakerState) -> None:
        self._counter(BREAKER_TRANSITIONS, deployment, state.name.lower()).inc()

    def config_reload(self, result: str) -> None:
        CONFIG_RELOADS.labels(result).inc()

    def _counter(self, metric: Counter, *labels: str) -> Counter:
        child = self._child(metric, *labels)
        assert isinstance(child, Counter)
        return child

    def _histogram(self, metric: Histogram, *labels: str) -> Histogram:
        child = self._child(metric, *labels)
        assert isinstance(child, Histogram)
        return child

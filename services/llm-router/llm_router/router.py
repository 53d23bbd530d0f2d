"""The router's use cases (`complete`, `stream_complete`, `list_models`, `status`, `set_weight`,
`reset_breaker`, `install` for reloads) and `_Call`, which runs one call's attempts.

One call, whatever the kind:

1. Pick deployments by smooth weighted round-robin (untried first) and ask the shared breakers
   to admit the first that may take a call: one Redis round trip.
2. Start the attempt as a task. Unary attempts signal their answer; stream attempts pump the
   provider's deltas into a queue and signal their first token.
3. Wait for the next signal or timer. Success (unary: the answer; stream: the first token)
   wins: every other attempt is cancelled at once, which closes its HTTP connection. A
   retryable failure with nothing else running schedules a retry (another deployment at once,
   the same one after exponential backoff with full jitter), if the retry budget, the attempt
   limit and the deadline allow. When the hedge delay passes with no answer, the same request
   goes to another deployment (a hedge; budgeted like a retry).
4. Streams then deliver the winner's deltas. A failure from here on ends the call with
   `StreamInterruptedError`: the caller has what was sent, and never a truncated OK.

Every attempt runs under its own bounds (per-attempt, first-token and idle timeouts, all cut to
the call's deadline, which is the caller's gRPC deadline minus a small margin so that no
upstream request outlives the caller). Outcomes go to the breakers: failures before the call
moves on (so they count for the next decision), plain successes in the background (so the
answer is not held up by a Redis round trip).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncGenerator, Coroutine
from dataclasses import dataclass
from typing import Any, Final

from llm_router.breaker import BreakerBoard, BreakerSnapshot, Permit, Refusal, Verdict
from llm_router.clock import Clock
from llm_router.config import RouterConfig
from llm_router.domain import (
    AttemptOutcome,
    AttemptReport,
    Completion,
    CompletionRequest,
    CompletionResult,
    DeploymentStatus,
    ModelInfo,
    Role,
    StreamEnd,
    StreamEvent,
    StreamSummary,
    TextDelta,
)
from llm_router.errors import (
    AllCoolingDownError,
    CallDeadlineExceededError,
    ConcurrencyLimitError,
    InvalidRequestError,
    NoDeploymentAvailableError,
    ProviderError,
    ProviderRateLimitedError,
    ProviderRejectedError,
    ProviderTimeoutError,
    RetryableProviderError,
    RetryBudgetExhaustedError,
    RouterError,
    StreamInterruptedError,
    UnknownDeploymentError,
    UpstreamFailedError,
    UpstreamRejectedError,
)
from llm_router.hedging import AttemptRace, hedge_delay
from llm_router.metrics import RouterMetrics
from llm_router.retry_budget import RetryBudget
from llm_router.routing_table import (
    AliasRoute,
    Deployment,
    ProviderFactory,
    RoutingTable,
    build_table,
)
from llm_router.stats import DeploymentStats
from llm_router.weights import WeightOverrides

__all__ = ["Router", "StreamOutput"]

logger = logging.getLogger("llm_router.router")

StreamOutput = TextDelta | StreamSummary

#: Deltas a stream attempt may read ahead of a slow caller.
_STREAM_BUFFER: Final = 64
#: What a stream attempt's signal carries once its first token (or its end) has arrived.
_FIRST_TOKEN: Final = object()
#: Retry-after suggested when every deployment is at its concurrency limit.
_CONCURRENCY_RETRY_AFTER_S: Final = 1.0

_RESULT_LABELS: Final[dict[type[RouterError], str]] = {
    UpstreamRejectedError: "rejected",
    UpstreamFailedError: "upstream_failed",
    StreamInterruptedError: "interrupted",
    CallDeadlineExceededError: "deadline",
    NoDeploymentAvailableError: "unavailable",
    AllCoolingDownError: "cooling_down",
    RetryBudgetExhaustedError: "budget_exhausted",
    ConcurrencyLimitError: "concurrency_limited",
    InvalidRequestError: "invalid",
}


def _result_label(error: RouterError) -> str:
    return _RESULT_LABELS.get(type(error), "error")


def _classify(error: ProviderError, config: RouterConfig) -> tuple[AttemptOutcome, Verdict, float]:
    """An attempt failure's outcome, what it means to the breaker, and any cool-down."""
    if isinstance(error, ProviderRateLimitedError):
        breaker = config.breaker
        wait = breaker.default_cooldown_s if error.retry_after_s is None else error.retry_after_s
        return AttemptOutcome.RATE_LIMITED, "rate_limited", min(wait, breaker.max_cooldown_s)
    if isinstance(error, ProviderRejectedError):
        return AttemptOutcome.REJECTED, "ignore", 0.0
    if isinstance(error, ProviderTimeoutError):
        return AttemptOutcome.TIMEOUT, "failure", 0.0
    return AttemptOutcome.ERROR, "failure", 0.0


def _validate(request: CompletionRequest) -> None:
    """Rules beyond the contract's own (which the runtime checks before a handler runs)."""
    if all(message.role is Role.SYSTEM for message in request.messages):
        raise InvalidRequestError("params.messages", "needs at least one user or assistant message")


class Router:
    """The LLM router's use cases over one routing table at a time."""

    def __init__(
        self,
        config: RouterConfig,
        *,
        provider_factory: ProviderFactory,
        breakers: BreakerBoard,
        weights: WeightOverrides,
        clock: Clock,
        metrics: RouterMetrics | None = None,
        random_source: random.Random | None = None,
    ) -> None:
        self._factory = provider_factory
        self._table, _ = build_table(config, provider_factory)
        self.breakers = breakers
        self.weights = weights
        self.clock = clock
        self.metrics = metrics or RouterMetrics()
        self.budget = RetryBudget(config.retry_budget, clock=clock)
        self.random = random_source or random.Random()
        self._stats: dict[str, DeploymentStats] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._retiring: set[asyncio.Task[None]] = set()

    # -- configuration --------------------------------------------------------------------

    @property
    def config(self) -> RouterConfig:
        return self._table.config

    def install(self, config: RouterConfig) -> None:
        """Serve `config` from now on; calls in flight finish on the table they started with."""
        table, retired = build_table(config, self._factory, previous=self._table)
        previous, self._table = self._table, table
        self.budget.configure(config.retry_budget)
        if retired:
            task = asyncio.get_running_loop().create_task(self._retire(previous, retired))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    async def _retire(self, table: RoutingTable, providers: list[Any]) -> None:
        await table.wait_idle()
        for provider in providers:
            await provider.aclose()

    def stats(self, deployment_id: str) -> DeploymentStats:
        found = self._stats.get(deployment_id)
        if found is None:
            found = self._stats[deployment_id] = DeploymentStats()
        return found

    # -- background work ------------------------------------------------------------------

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` after the call that started it (owned; awaited by `settle`/`close`)."""
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("background work failed", exc_info=task.exception())

    async def settle(self) -> None:
        """Wait for what calls left behind: records, and cancelled losers closing."""
        while self._background:
            await asyncio.wait(list(self._background))
        await self.breakers.flush()

    async def close(self) -> None:
        """Finish background work and close every provider client."""
        await self.settle()
        for task in list(self._retiring):
            task.cancel()
        await asyncio.gather(*self._retiring, return_exceptions=True)
        for deployment in self._table.deployments.values():
            await deployment.provider.aclose()

    # -- use cases ------------------------------------------------------------------------

    def _call_deadline(self, config: RouterConfig, deadline: float | None) -> float:
        """The call's deadline on the event loop's clock, from a `time.monotonic()` one."""
        loop_now = asyncio.get_running_loop().time()
        ours = loop_now + config.default_deadline_s
        if deadline is None:
            return ours
        return min(ours, loop_now + (deadline - time.monotonic()) - config.deadline_margin_s)

    async def complete(
        self, request: CompletionRequest, *, deadline: float | None = None
    ) -> CompletionResult:
        """Answer `request` with one deployment of its alias; `deadline` is the caller's,
        on the `time.monotonic()` clock."""
        table = self._table
        try:
            route = table.route(request.model)
            _validate(request)
        except RouterError:
            self.metrics.request("complete", "", "invalid")
            raise
        table.enter()
        try:
            call = _Call(self, table, route, request, self._call_deadline(table.config, deadline))
            result = await call.run_unary()
        except RouterError as error:
            self.metrics.request("complete", route.alias, _result_label(error))
            raise
        finally:
            table.leave()
        self.metrics.request("complete", route.alias, "ok")
        return result

    async def stream_complete(
        self, request: CompletionRequest, *, deadline: float | None = None
    ) -> AsyncGenerator[StreamOutput, None]:
        """Text deltas, then a `StreamSummary`; see the module docstring for failures."""
        table = self._table
        try:
            route = table.route(request.model)
            _validate(request)
        except RouterError:
            self.metrics.request("stream", "", "invalid")
            raise
        table.enter()
        try:
            call = _Call(
                self, table, route, request, self._call_deadline(table.config, deadline),
                streaming=True,
            )  # fmt: skip
            outputs = call.run_stream()
            async with contextlib.aclosing(outputs):
                async for output in outputs:
                    yield output
        except RouterError as error:
            self.metrics.request("stream", route.alias, _result_label(error))
            raise
        finally:
            table.leave()
        self.metrics.request("stream", route.alias, "ok")

    def list_models(self) -> list[ModelInfo]:
        return [
            ModelInfo(route.alias, tuple(d.id for d in route.deployments))
            for route in self._table.routes.values()
        ]

    async def status(self) -> tuple[list[DeploymentStatus], int]:
        """Every deployment's status, and the retries and hedges the budget allows now."""
        table = self._table
        snapshots = await self.breakers.snapshots(list(table.deployments), table.config.breaker)
        statuses = [
            self._status_of(deployment, snapshots[deployment_id])
            for deployment_id, deployment in table.deployments.items()
        ]
        return statuses, self.budget.available()

    async def deployment_status(self, deployment_id: str) -> DeploymentStatus:
        table = self._table
        deployment = self._deployment(table, deployment_id)
        snapshots = await self.breakers.snapshots([deployment_id], table.config.breaker)
        return self._status_of(deployment, snapshots[deployment_id])

    async def set_weight(self, deployment_id: str, weight: int) -> DeploymentStatus:
        """Weight 0 drains the deployment: no new calls; calls in flight finish."""
        deployment = self._deployment(self._table, deployment_id)
        await self.weights.set(deployment_id, weight, configured=deployment.config.weight)
        return await self.deployment_status(deployment_id)

    async def reset_breaker(self, deployment_id: str) -> DeploymentStatus:
        table = self._table
        self._deployment(table, deployment_id)
        await self.breakers.reset(deployment_id, table.config.breaker)
        return await self.deployment_status(deployment_id)

    def _deployment(self, table: RoutingTable, deployment_id: str) -> Deployment:
        deployment = table.deployments.get(deployment_id)
        if deployment is None:
            raise UnknownDeploymentError(deployment_id)
        return deployment

    def _status_of(self, deployment: Deployment, snapshot: BreakerSnapshot) -> DeploymentStatus:
        config = deployment.config
        stats = self.stats(config.id)
        return DeploymentStatus(
            deployment_id=config.id,
            alias=config.alias,
            provider=config.provider,
            provider_model=config.model,
            weight=self.weights.weight(config.id, config.weight),
            breaker_state=snapshot.state,
            window_calls=snapshot.window_calls,
            window_failures=snapshot.window_failures,
            window_slow_calls=snapshot.window_slow_calls,
            in_flight=stats.in_flight,
            latency_p50_s=stats.latency.percentile(50),
            latency_p95_s=stats.latency.percentile(95),
            first_token_p50_s=stats.first_token.percentile(50),
            first_token_p95_s=stats.first_token.percentile(95),
            cooldown_remaining_s=snapshot.cooldown_remaining_s,
            open_remaining_s=snapshot.open_remaining_s,
        )


@dataclass(eq=False, slots=True)
class _Attempt:
    deployment: Deployment
    permit: Permit
    hedge: bool
    #: Loop times.
    started: float
    hard_deadline: float
    #: Resolves once: a Completion (unary), _FIRST_TOKEN (stream) or a ProviderError.
    signal: asyncio.Future[object]
    queue: asyncio.Queue[StreamEvent | ProviderError] | None = None
    task: asyncio.Task[None] | None = None
    first_token_at: float | None = None
    outcome: AttemptOutcome | None = None
    latency: float = 0.0
    error: str = ""

    def report(self, now: float) -> AttemptReport:
        if self.outcome is None:
            return AttemptReport(
                self.deployment.id, AttemptOutcome.CANCELLED, now - self.started, self.hedge
            )
        return AttemptReport(self.deployment.id, self.outcome, self.latency, self.hedge, self.error)


def _earliest(*times: float | None) -> float | None:
    present = [t for t in times if t is not None]
    return min(present) if present else None


class _Call:
    """One call's attempts: selection, admission, retries, hedges and their bookkeeping."""

    def __init__(
        self,
        router: Router,
        table: RoutingTable,
        route: AliasRoute,
        request: CompletionRequest,
        deadline: float,
        *,
        streaming: bool = False,
    ) -> None:
        self._router = router
        self._table = table
        self._config = table.config
        self._route = route
        self._request = request
        self._deadline = deadline
        self._streaming = streaming
        self._loop = asyncio.get_running_loop()
        self._attempts: list[_Attempt] = []
        self._race: AttemptRace[_Attempt] = AttemptRace()
        self._tried: set[str] = set()
        self._refusals: dict[str, Refusal] = {}
        self._at_capacity: set[str] = set()
        self._primaries = 0
        self._hedges = 0
        self._hedging_stopped = False
        self._last_error: ProviderError | None = None
        router.budget.record_request()

    def reports(self) -> tuple[AttemptReport, ...]:
        now = self._loop.time()
        return tuple(attempt.report(now) for attempt in self._attempts)

    async def _race_within_deadline(self, what: str) -> _Attempt:
        """The winning attempt, or DEADLINE_EXCEEDED naming `what` did not happen in time;
        every other attempt is abandoned on the way out if none won."""
        try:
            async with asyncio.timeout_at(self._deadline) as timer:
                return await self._race_attempts()
        except TimeoutError:
            self._abandon(keep=None)
            if not timer.expired():
                raise
            raise self._deadline_exceeded(what) from None
        except BaseException:
            self._abandon(keep=None)
            raise

    # -- unary ----------------------------------------------------------------------------

    async def run_unary(self) -> CompletionResult:
        winner = await self._race_within_deadline("before any deployment answered")
        completion = winner.signal.result()
        assert isinstance(completion, Completion)
        latency = self._loop.time() - winner.started
        self._router.stats(winner.deployment.id).latency.add(latency)
        await self._succeeded(winner, measured=latency, prompt=completion.usage.prompt_tokens,
                              completion=completion.usage.completion_tokens)  # fmt: skip
        return CompletionResult(
            completion=completion,
            deployment_id=winner.deployment.id,
            provider_model=winner.deployment.config.model,
            attempts=self.reports(),
        )

    async def _run_unary_attempt(self, attempt: _Attempt) -> None:
        config = attempt.deployment.config
        result: object
        try:
            async with asyncio.timeout_at(attempt.hard_deadline):
                result = await attempt.deployment.provider.complete(
                    self._request, transport_timeout=config.timeout_s
                )
        except TimeoutError:
            result = ProviderTimeoutError(self._timeout_message(attempt, "answer"))
        except ProviderError as error:
            result = error
        except Exception as error:  # a provider bug: count it, never crash the call
            logger.error("provider failed unexpectedly", exc_info=error,
                         extra={"deployment": config.id})  # fmt: skip
            result = RetryableProviderError(f"internal error ({type(error).__name__})")
        if not attempt.signal.done():
            attempt.signal.set_result(result)

    # -- streams --------------------------------------------------------------------------

    async def run_stream(self) -> AsyncGenerator[StreamOutput, None]:
        winner = await self._race_within_deadline("before any deployment sent a token")
        router = self._router
        deployment_id = winner.deployment.id
        assert winner.first_token_at is not None and winner.queue is not None
        first_token = winner.first_token_at - winner.started
        router.stats(deployment_id).first_token.add(first_token)
        router.metrics.first_token(deployment_id, first_token)
        queue = winner.queue
        produced = 0
        pending: StreamEvent | ProviderError | None = None
        try:
            while True:
                item = pending if pending is not None else await queue.get()
                pending = None
                if type(item) is TextDelta:
                    # Deltas that queued up while the caller was busy go out as one message:
                    # nothing waits for it, and a loaded router sends fewer, larger messages.
                    if not queue.empty():
                        parts = [item.text]
                        while not queue.empty():
                            following = queue.get_nowait()
                            if type(following) is not TextDelta:
                                pending = following
                                break
                            parts.append(following.text)
                        item = TextDelta("".join(parts))
                    produced += len(item.text)
                    yield item
                elif isinstance(item, StreamEnd):
                    usage = item.usage
                    await self._succeeded(winner, measured=first_token,
                                          prompt=usage.prompt_tokens,
                                          completion=usage.completion_tokens)  # fmt: skip
                    yield StreamSummary(
                        finish_reason=item.finish_reason,
                        usage=usage,
                        deployment_id=deployment_id,
                        provider_model=winner.deployment.config.model,
                        attempts=self.reports(),
                    )
                    return
                else:
                    assert isinstance(item, ProviderError)
                    await self._failed(winner, item)
                    if self._loop.time() >= self._deadline:
                        raise self._deadline_exceeded(f"after {produced} characters")
                    raise StreamInterruptedError(
                        f"the stream from {deployment_id} broke after {produced} characters "
                        f"({item}); the reply is incomplete",
                        produced_chars=produced,
                        deployment_id=deployment_id,
                        attempts=self.reports(),
                    )
        finally:
            self._abandon(keep=None)

    async def _run_stream_attempt(self, attempt: _Attempt) -> None:
        """Pump the provider's stream into the attempt's queue, under its timeouts."""
        loop = self._loop
        config = attempt.deployment.config
        queue = attempt.queue
        assert queue is not None
        hard_end = attempt.hard_deadline
        idle = config.idle_timeout_s
        error: ProviderError
        try:
            async with asyncio.timeout_at(
                min(attempt.started + config.first_token_timeout_s, hard_end)
            ) as timer:
                events = attempt.deployment.provider.stream(
                    self._request, transport_timeout=config.timeout_s
                )
                async with contextlib.aclosing(events):
                    async for event in events:
                        if type(event) is TextDelta and not event.text:
                            continue
                        if attempt.first_token_at is None:
                            attempt.first_token_at = loop.time()
                            attempt.signal.set_result(_FIRST_TOKEN)
                        if queue.full():
                            # The caller reads slowly: its pace is not the provider's silence.
                            timer.reschedule(None)
                            await queue.put(event)
                        else:
                            queue.put_nowait(event)
                        if type(event) is StreamEnd:
                            return
                        timer.reschedule(min(loop.time() + idle, hard_end))
            error = RetryableProviderError("stream ended without an end event")
        except TimeoutError:
            phase = "first token" if attempt.first_token_at is None else "next token"
            error = ProviderTimeoutError(self._timeout_message(attempt, phase))
        except ProviderError as failure:
            error = failure
        except Exception as failure:
            logger.error("provider failed unexpectedly", exc_info=failure,
                         extra={"deployment": config.id})  # fmt: skip
            error = RetryableProviderError(f"internal error ({type(failure).__name__})")
        if attempt.first_token_at is None:
            attempt.signal.set_result(error)
        else:
            await queue.put(error)

    def _timeout_message(self, attempt: _Attempt, waiting_for: str) -> str:
        config = attempt.deployment.config
        now = self._loop.time()
        if now >= self._deadline - 1e-3:
            return f"the call's deadline passed while waiting for the {waiting_for}"
        if now >= attempt.started + config.timeout_s - 1e-3:
            return f"attempt timeout ({config.timeout_s:g} s) waiting for the {waiting_for}"
        if waiting_for == "first token":
            return f"no first token within {config.first_token_timeout_s:g} s"
        return f"no token for {config.idle_timeout_s:g} s"

    # -- the race -------------------------------------------------------------------------

    async def _race_attempts(self) -> _Attempt:
        """Run attempts until one succeeds (unary: its answer; streams: its first token)."""
        if await self._launch(hedge=False) is None:
            raise self._nothing_admitted()
        hedge_at = self._next_hedge_at()
        retry_at: float | None = None
        while True:
            for attempt in await self._race.next(until=_earliest(hedge_at, retry_at)):
                signal = attempt.signal.result()
                if not isinstance(signal, ProviderError):
                    self._abandon(keep=attempt)
                    return attempt
                await self._failed(attempt, signal)
                if isinstance(signal, ProviderRejectedError):
                    raise UpstreamRejectedError(
                        f"{attempt.deployment.id} rejected the request: {signal}",
                        attempts=self.reports(),
                    )
            now = self._loop.time()
            if retry_at is None and not self._race:
                retry_at = now + self._plan_retry(now)
            if retry_at is not None and now >= retry_at:
                retry_at = None
                if await self._launch(hedge=False) is None:
                    self._router.budget.refund()
                    if not self._race:
                        raise self._nothing_admitted()
                hedge_at = self._next_hedge_at()
            elif hedge_at is not None and now >= hedge_at:
                await self._hedge()
                hedge_at = self._next_hedge_at()

    def _next_hedge_at(self) -> float | None:
        config = self._config.hedging
        if not config.enabled or self._hedging_stopped or self._hedges >= config.max_hedges:
            return None
        running = self._race.waiting
        if not running:
            return None
        latest = running[-1]
        stats = self._router.stats(latest.deployment.id)
        window = stats.first_token if self._streaming else stats.latency
        at = latest.started + hedge_delay(config, window)
        return at if at < self._deadline else None

    async def _hedge(self) -> None:
        router = self._router
        if not self._race:
            return
        if not router.budget.try_spend():
            router.metrics.budget_exhausted(self._route.alias)
            self._hedging_stopped = True
            return
        if await self._launch(hedge=True) is None:
            router.budget.refund()
            self._hedging_stopped = True

    def _plan_retry(self, now: float) -> float:
        """Seconds until the next retry; raises when there is to be none."""
        router = self._router
        retries = self._config.retries
        last = self._last_error
        if self._primaries >= retries.max_attempts:
            raise UpstreamFailedError(
                f"all {self._primaries} attempts failed; last error: {last}",
                attempts=self.reports(),
            )
        if not router.budget.try_spend():
            router.metrics.budget_exhausted(self._route.alias)
            raise RetryBudgetExhaustedError(
                f"the retry budget is spent; last error: {last}",
                retry_after_s=router.budget.retry_after_s,
                attempts=self.reports(),
            )
        if self._untried_available():
            backoff = 0.0
        else:
            cap = min(retries.backoff_max_s, retries.backoff_base_s * 2 ** (self._primaries - 1))
            backoff = router.random.uniform(0, cap)
        if now + backoff >= self._deadline:
            router.budget.refund()
            raise UpstreamFailedError(
                f"no time left to retry before the deadline; last error: {last}",
                attempts=self.reports(),
            )
        return backoff

    def _untried_available(self) -> bool:
        weights = self._router.weights
        for deployment in self._route.deployments:
            deployment_id = deployment.id
            if (
                deployment_id not in self._tried
                and deployment_id not in self._refusals
                and deployment_id not in self._at_capacity
                and weights.weight(deployment_id, deployment.config.weight) > 0
            ):
                return True
        return False

    # -- launching and settling attempts --------------------------------------------------

    def _candidates(self) -> tuple[list[tuple[str, int]], list[str]]:
        """(untried deployments and weights, for the pick; tried ones, admissible after them)."""
        router = self._router
        weights = router.weights
        self._at_capacity.clear()
        fresh: list[tuple[str, int]] = []
        tried: list[tuple[str, int]] = []
        for deployment in self._route.deployments:
            weight = weights.weight(deployment.id, deployment.config.weight)
            if weight <= 0:
                continue
            limit = deployment.config.max_concurrency
            if limit is not None and router.stats(deployment.id).in_flight >= limit:
                self._at_capacity.add(deployment.id)
                continue
            (tried if deployment.id in self._tried else fresh).append((deployment.id, weight))
        if not fresh:
            return tried, []
        return fresh, [deployment_id for deployment_id, _ in tried]

    async def _launch(self, *, hedge: bool) -> _Attempt | None:
        """Admit a deployment and start an attempt on it; None when none may take it."""
        picked, fallbacks = self._candidates()
        if not picked:
            return None
        router = self._router
        selector = self._route.selector
        pick = selector.pick(picked)
        admission = await router.breakers.admit((*pick.order, *fallbacks), self._config.breaker)
        permit = admission.permit
        admitted = permit.deployment_id if permit is not None else None
        selector.settle(
            pick,
            admitted if admitted in pick.weights else None,
            (r.deployment_id for r in admission.refusals if r.deployment_id in pick.weights),
        )
        for refusal in admission.refusals:
            self._refusals[refusal.deployment_id] = refusal
        if permit is None:
            return None
        self._refusals.pop(permit.deployment_id, None)
        deployment = self._table.deployments[permit.deployment_id]
        loop = self._loop
        now = loop.time()
        attempt = _Attempt(
            deployment=deployment,
            permit=permit,
            hedge=hedge,
            started=now,
            hard_deadline=min(now + deployment.config.timeout_s, self._deadline),
            signal=loop.create_future(),
        )
        if self._streaming:
            attempt.queue = asyncio.Queue(maxsize=_STREAM_BUFFER)
            attempt.task = loop.create_task(self._run_stream_attempt(attempt))
        else:
            attempt.task = loop.create_task(self._run_unary_attempt(attempt))
        router.stats(deployment.id).in_flight += 1
        self._attempts.append(attempt)
        self._race.add(attempt, attempt.signal)
        self._tried.add(deployment.id)
        if hedge:
            self._hedges += 1
            router.metrics.hedge(self._route.alias)
        else:
            self._primaries += 1
        return attempt

    def _finish(self, attempt: _Attempt, outcome: AttemptOutcome, error: str = "") -> None:
        """Mark how an attempt ended (once)."""
        attempt.outcome = outcome
        attempt.latency = self._loop.time() - attempt.started
        attempt.error = error
        router = self._router
        router.stats(attempt.deployment.id).in_flight -= 1
        seconds = (
            attempt.latency if outcome is AttemptOutcome.SUCCESS and not self._streaming else None
        )
        router.metrics.attempt(attempt.deployment.id, outcome, hedge=attempt.hedge, seconds=seconds)

    async def _failed(self, attempt: _Attempt, error: ProviderError) -> None:
        outcome, verdict, cooldown = _classify(error, self._config)
        self._finish(attempt, outcome, str(error))
        self._last_error = error
        await self._router.breakers.record(
            attempt.permit, verdict, self._config.breaker, cooldown_s=cooldown
        )

    async def _succeeded(
        self, attempt: _Attempt, *, measured: float, prompt: int, completion: int
    ) -> None:
        """`measured`: the latency the slow-call threshold applies to (streams: first token)."""
        router = self._router
        self._finish(attempt, AttemptOutcome.SUCCESS)
        router.metrics.tokens(attempt.deployment.id, prompt, completion)
        if attempt.hedge:
            router.metrics.hedge_won(self._route.alias)
        policy = self._config.breaker
        permit = attempt.permit
        slow = measured >= policy.slow_call_s
        if permit.probe or slow:
            # It may decide a transition: done before the caller hears back.
            await router.breakers.record(permit, "success", policy, slow=slow)
        elif not permit.unshared:
            router.breakers.record_success_soon(permit, policy)

    def _abandon(self, *, keep: _Attempt | None) -> None:
        """Cancel every unfinished attempt but `keep`; their connections close now, their
        tasks are awaited in the background."""
        for attempt in self._attempts:
            if attempt is keep or attempt.outcome is not None:
                continue
            self._race.discard(attempt.signal)
            if attempt.task is not None:
                attempt.task.cancel()
            self._finish(attempt, AttemptOutcome.CANCELLED, "cancelled")
            self._router.spawn(self._reap(attempt))

    async def _reap(self, attempt: _Attempt) -> None:
        task = attempt.task
        if task is not None:
            await asyncio.wait([task])
            if not task.cancelled():
                task.exception()  # retrieved: a late failure of a loser is of no interest
        await self._router.breakers.record(attempt.permit, "ignore", self._config.breaker)

    # -- failures -------------------------------------------------------------------------

    def _deadline_exceeded(self, when: str) -> CallDeadlineExceededError:
        self._abandon(keep=None)
        return CallDeadlineExceededError(f"the deadline passed {when}", attempts=self.reports())

    def _nothing_admitted(self) -> RouterError:
        """Why no attempt could start, as the error the caller gets."""
        alias = self._route.alias
        attempts = self.reports()
        weights = self._router.weights
        if not any(weights.weight(d.id, d.config.weight) > 0 for d in self._route.deployments):
            return NoDeploymentAvailableError(
                f"every deployment of {alias} is drained (weight 0)", attempts=attempts
            )
        refusals = [self._refusals[d.id] for d in self._route.deployments if d.id in self._refusals]
        if refusals and all(r.reason == "cooling" for r in refusals) and not self._at_capacity:
            return AllCoolingDownError(
                f"every deployment of {alias} is cooling down after a 429",
                retry_after_s=min(r.remaining_s for r in refusals),
                attempts=attempts,
            )
        if self._at_capacity and not refusals:
            return ConcurrencyLimitError(
                f"every deployment of {alias} is at its concurrency limit",
                retry_after_s=_CONCURRENCY_RETRY_AFTER_S,
                attempts=attempts,
            )
        described = "; ".join(_describe(refusal) for refusal in refusals)
        if self._last_error is not None:
            return UpstreamFailedError(
                f"every deployment of {alias} failed or is unavailable ({described}); "
                f"last error: {self._last_error}",
                attempts=attempts,
            )
        return NoDeploymentAvailableError(
            f"no deployment of {alias} is available: {described}", attempts=attempts
        )


def _describe(refusal: Refusal) -> str:
    if refusal.reason == "open":
        return f"{refusal.deployment_id}: breaker open for {refusal.remaining_s:.1f} s more"
    if refusal.reason == "cooling":
        return f"{refusal.deployment_id}: cooling down for {refusal.remaining_s:.1f} s more"
    return f"{refusal.deployment_id}: breaker half-open, probes in flight"

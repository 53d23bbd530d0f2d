"""The gRPC entrypoint: converts protos to use-case calls and back, and maps the router's
errors to status codes in one place (`_abort`)."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import AsyncGenerator
from typing import Any, Final, NoReturn

import grpc
import grpc.aio
from google.protobuf import duration_pb2

from llm_router.domain import (
    AttemptReport,
    BreakerState,
    ChatMessage,
    CompletionRequest,
    CompletionResult,
    DeploymentStatus,
    Role,
    StreamSummary,
    TextDelta,
    Usage,
)
from llm_router.errors import (
    CallDeadlineExceededError,
    CapacityExhaustedError,
    InvalidRequestError,
    RouterError,
    UnknownDeploymentError,
    UnknownModelError,
    UpstreamRejectedError,
)
from llm_router.router import Router
from switchboard.llm.v1 import llm_pb2, llm_pb2_grpc
from switchboard_runtime.grpc_errors import abort_resource_exhausted, abort_with_field_violations
from switchboard_runtime.request_context import remaining_time, request_id_var

Context = grpc.aio.ServicerContext[Any, Any]

_ROLES: Final = {
    llm_pb2.CHAT_ROLE_SYSTEM: Role.SYSTEM,
    llm_pb2.CHAT_ROLE_USER: Role.USER,
    llm_pb2.CHAT_ROLE_ASSISTANT: Role.ASSISTANT,
}
_BREAKER_STATES: Final = {
    BreakerState.CLOSED: llm_pb2.BREAKER_STATE_CLOSED,
    BreakerState.OPEN: llm_pb2.BREAKER_STATE_OPEN,
    BreakerState.HALF_OPEN: llm_pb2.BREAKER_STATE_HALF_OPEN,
}


def _float(value: float) -> float:
    # Proto floats are float32: 0.7 arrives as 0.699999988..., which providers would echo.
    return round(value, 6)


def completion_request(params: llm_pb2.CompletionParams) -> CompletionRequest:
    return CompletionRequest(
        model=params.model,
        messages=tuple(ChatMessage(_ROLES[m.role], m.content) for m in params.messages),
        temperature=_float(params.temperature) if params.HasField("temperature") else None,
        top_p=_float(params.top_p) if params.HasField("top_p") else None,
        max_tokens=params.max_tokens if params.HasField("max_tokens") else None,
        stop=tuple(params.stop),
        request_id=request_id_var.get(),
    )


def _deadline() -> float | None:
    remaining = remaining_time()
    return None if remaining is None else time.monotonic() + remaining


def _duration(seconds: float) -> duration_pb2.Duration:
    whole = math.floor(seconds)
    return duration_pb2.Duration(seconds=whole, nanos=round((seconds - whole) * 1e9))


def _usage(usage: Usage) -> llm_pb2.Usage:
    return llm_pb2.Usage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
    )


def _attempts(reports: tuple[AttemptReport, ...]) -> list[llm_pb2.Attempt]:
    return [
        llm_pb2.Attempt(
            deployment_id=report.deployment_id,
            outcome=report.outcome.value,  # type: ignore[arg-type]
            latency=_duration(report.latency_s),
            hedge=report.hedge,
            error=report.error,
        )
        for report in reports
    ]


def _complete_response(result: CompletionResult) -> llm_pb2.CompleteResponse:
    completion = result.completion
    return llm_pb2.CompleteResponse(
        text=completion.text,
        finish_reason=completion.finish_reason.value,  # type: ignore[arg-type]
        usage=_usage(completion.usage),
        deployment_id=result.deployment_id,
        provider_model=result.provider_model,
        attempts=_attempts(result.attempts),
    )


def _summary(summary: StreamSummary) -> llm_pb2.StreamSummary:
    return llm_pb2.StreamSummary(
        finish_reason=summary.finish_reason.value,  # type: ignore[arg-type]
        usage=_usage(summary.usage),
        deployment_id=summary.deployment_id,
        provider_model=summary.provider_model,
        attempts=_attempts(summary.attempts),
    )


def deployment_status(status: DeploymentStatus) -> llm_pb2.DeploymentStatus:
    message = llm_pb2.DeploymentStatus(
        deployment_id=status.deployment_id,
        alias=status.alias,
        provider=status.provider,
        provider_model=status.provider_model,
        weight=status.weight,
        breaker_state=_BREAKER_STATES[status.breaker_state],
        window_calls=status.window_calls,
        window_failures=status.window_failures,
        window_slow_calls=status.window_slow_calls,
        in_flight=status.in_flight,
    )
    for name in ("latency_p50", "latency_p95", "first_token_p50", "first_token_p95"):
        value = getattr(status, f"{name}_s")
        if value is not None:
            getattr(message, name).CopyFrom(_duration(value))
    if status.cooldown_remaining_s > 0:
        message.cooldown_remaining.CopyFrom(_duration(status.cooldown_remaining_s))
    if status.open_remaining_s > 0:
        message.breaker_open_remaining.CopyFrom(_duration(status.open_remaining_s))
    return message


async def _abort(context: Context, error: RouterError) -> NoReturn:
    """The one place router errors become gRPC statuses."""
    if isinstance(error, UnknownModelError):
        await abort_with_field_violations(context, [("params.model", error.message)])
    if isinstance(error, InvalidRequestError):
        await abort_with_field_violations(context, [(error.field, error.description)])
    if isinstance(error, CapacityExhaustedError):
        await abort_resource_exhausted(context, error.retry_after_s, error.message)
    if isinstance(error, UpstreamRejectedError):
        code = grpc.StatusCode.INVALID_ARGUMENT
    elif isinstance(error, UnknownDeploymentError):
        code = grpc.StatusCode.NOT_FOUND
    elif isinstance(error, CallDeadlineExceededError):
        code = grpc.StatusCode.DEADLINE_EXCEEDED
    else:  # no deployment available, every attempt failed, a stream broke mid-answer
        code = grpc.StatusCode.UNAVAILABLE
    await context.abort(code, error.message)
    raise AssertionError("unreachable: context.abort raises")


class LlmServicer(llm_pb2_grpc.LlmServiceServicer):
    def __init__(self, router: Router) -> None:
        self._router = router

    async def Complete(
        self, request: llm_pb2.CompleteRequest, context: Context
    ) -> llm_pb2.CompleteResponse:
        try:
            result = await self._router.complete(
                completion_request(request.params), deadline=_deadline()
            )
        except RouterError as error:
            await _abort(context, error)
        return _complete_response(result)

    async def StreamComplete(
        self, request: llm_pb2.StreamCompleteRequest, context: Context
    ) -> AsyncGenerator[llm_pb2.StreamCompleteResponse, None]:
        outputs = self._router.stream_complete(
            completion_request(request.params), deadline=_deadline()
        )
        try:
            async with contextlib.aclosing(outputs):
                async for output in outputs:
                    if type(output) is TextDelta:
                        yield llm_pb2.StreamCompleteResponse(delta=output.text)
                    else:
                        assert isinstance(output, StreamSummary)
                        yield llm_pb2.StreamCompleteResponse(summary=_summary(output))
        except RouterError as error:
            await _abort(context, error)

    async def ListModels(
        self, request: llm_pb2.ListModelsRequest, context: Context
    ) -> llm_pb2.ListModelsResponse:
        return llm_pb2.ListModelsResponse(
            models=[
                llm_pb2.Model(alias=model.alias, deployment_ids=model.deployment_ids)
                for model in self._router.list_models()
            ]
        )

    async def GetRouterStatus(
        self, request: llm_pb2.GetRouterStatusRequest, context: Context
    ) -> llm_pb2.GetRouterStatusResponse:
        statuses, budget = await self._router.status()
        return llm_pb2.GetRouterStatusResponse(
            deployments=[deployment_status(status) for status in statuses],
            retry_budget_available=budget,
        )

    async def SetDeploymentWeight(
        self, request: llm_pb2.SetDeploymentWeightRequest, context: Context
    ) -> llm_pb2.SetDeploymentWeightResponse:
        try:
            status = await self._router.set_weight(request.deployment_id, request.weight)
        except RouterError as error:
            await _abort(context, error)
        return llm_pb2.SetDeploymentWeightResponse(deployment=deployment_status(status))

    async def ResetBreaker(
        self, request: llm_pb2.ResetBreakerRequest, context: Context
    ) -> llm_pb2.ResetBreakerResponse:
        try:
            status = await self._router.reset_breaker(request.deployment_id)
        except RouterError as error:
            await _abort(context, error)
        return llm_pb2.ResetBreakerResponse(deployment=deployment_status(status))

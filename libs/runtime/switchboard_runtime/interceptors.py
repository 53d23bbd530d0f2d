"""gRPC aio server interceptors: request ids, deadlines, access logs and metrics, validation.

They fill context variables and handle cross-cutting failures, so handlers repeat nothing.
`ServiceApp` installs them in this order (outermost first): OpenTelemetry, RequestId, Deadline,
AccessLog, the service's extra interceptors, Validation.

An aio interceptor's `intercept_service` runs before the handler and never sees the servicer
context, so each interceptor wraps the method handler with `wrap_handler`; the wrapper runs
around the handler inside the call, for all four RPC kinds. Handlers must be coroutines
(unary responses) or async generators (streaming responses), which the OpenTelemetry
interceptor requires as well; the reader/writer style (`context.write`) is not supported.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

import grpc
import grpc.aio
import protovalidate
from google.protobuf.message import Message

from switchboard_runtime.grpc_errors import abort_with_field_violations
from switchboard_runtime.metrics import (
    GRPC_SERVER_HANDLED,
    GRPC_SERVER_HANDLING_SECONDS,
    GRPC_SERVER_STARTED,
    go_code_name,
)
from switchboard_runtime.request_context import REQUEST_ID_HEADER, deadline_var, request_id_var

__all__ = [
    "REQUEST_ID_HEADER",
    "AccessLogInterceptor",
    "CallInfo",
    "DeadlineInterceptor",
    "RequestIdInterceptor",
    "ValidationInterceptor",
    "WrappingInterceptor",
    "violation_field_path",
    "wrap_handler",
]

logger = logging.getLogger("switchboard.access")

_SANE_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._-]{1,128}")

# Probes and tooling would drown the access log; they are still counted in the metrics.
_QUIET_METHOD_PREFIXES: Final = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)

# Codes that mean the server (or something behind it) failed, logged at WARNING.
_SERVER_FAULTS: Final = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.DATA_LOSS,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    }
)
_CODES_BY_NUMBER: Final = {code.value[0]: code for code in grpc.StatusCode}

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Continuation: TypeAlias = Callable[[grpc.HandlerCallDetails], Awaitable["Handler | None"]]
CallKind: TypeAlias = Literal["unary", "client_stream", "server_stream", "bidi_stream"]

#: Runs around one call: entered before the handler starts, exited when it has finished.
Around: TypeAlias = Callable[["CallInfo", Context], AbstractAsyncContextManager[None]]
#: Checks one request message before the handler sees it; aborts the call to reject it.
CheckRequest: TypeAlias = Callable[[Any, Context], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class CallInfo:
    """What an interceptor knows about the call it wraps."""

    method: str
    """Full method path, `/package.Service/Method`."""
    kind: CallKind

    @classmethod
    def of(cls, details: grpc.HandlerCallDetails, handler: Handler) -> CallInfo:
        if handler.request_streaming:
            kind: CallKind = "bidi_stream" if handler.response_streaming else "client_stream"
        else:
            kind = "server_stream" if handler.response_streaming else "unary"
        return cls(method=details.method, kind=kind)

    @property
    def service(self) -> str:
        return self.method.lstrip("/").partition("/")[0]

    @property
    def name(self) -> str:
        return self.method.rpartition("/")[2]


@asynccontextmanager
async def _nothing_around(call: CallInfo, context: Context) -> AsyncIterator[None]:
    yield


async def _checked(
    requests: AsyncIterator[Any], context: Context, check: CheckRequest
) -> AsyncIterator[Any]:
    async for request in requests:
        await check(request, context)
        yield request


# grpc's handler constructor per (request_streaming, response_streaming).
_HANDLER_FACTORIES: Final[dict[tuple[bool, bool], Callable[..., Handler]]] = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def _behavior_of(handler: Handler) -> Callable[..., Any]:
    if handler.request_streaming:
        behavior = handler.stream_stream if handler.response_streaming else handler.stream_unary
    else:
        behavior = handler.unary_stream if handler.response_streaming else handler.unary_unary
    if behavior is None:
        raise TypeError("the method handler has no behaviour for its kind of call")
    return behavior


def wrap_handler(
    handler: Handler,
    call: CallInfo,
    *,
    around: Around | None = None,
    check_request: CheckRequest | None = None,
) -> Handler:
    """A copy of `handler` whose behaviour runs inside `around` and checks each request first.

    Request checks run inside `around`, so an interceptor observing the call sees the
    rejection. Streaming requests are checked one by one as the handler reads them.
    """
    enter = around or _nothing_around
    inner = _behavior_of(handler)

    async def prepared(request: Any, context: Context) -> Any:
        if check_request is None:
            return request
        if handler.request_streaming:
            return _checked(request, context, check_request)
        await check_request(request, context)
        return request

    behavior: Callable[..., Any]
    if not handler.response_streaming:

        async def unary(request: Any, context: Context) -> Any:
            async with enter(call, context):
                return await inner(await prepared(request, context), context)

        behavior = unary
    elif inspect.iscoroutinefunction(inner):
        # Reader/writer style (`await context.write(...)`), as grpc's own health Watch is.
        async def writing(request: Any, context: Context) -> None:
            async with enter(call, context):
                await inner(await prepared(request, context), context)

        behavior = writing
    else:

        async def streaming(request: Any, context: Context) -> AsyncIterator[Any]:
            async with enter(call, context):
                responses = inner(await prepared(request, context), context)
                # aclosing: if the call ends early, the handler's own cleanup runs now,
                # inside `around`, not whenever the garbage collector gets to it.
                async with contextlib.aclosing(responses):
                    async for response in responses:
                        yield response

        behavior = streaming

    factory = _HANDLER_FACTORIES[(handler.request_streaming, handler.response_streaming)]
    return factory(
        behavior,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


class WrappingInterceptor(grpc.aio.ServerInterceptor):
    """Base for interceptors that only need to run code around calls or check requests:
    set `around` and/or `check_request` in `__init__`."""

    around: Around | None = None
    check_request: CheckRequest | None = None

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:  # unknown method: grpc answers UNIMPLEMENTED
            return None
        return wrap_handler(
            handler,
            CallInfo.of(handler_call_details, handler),
            around=self.around,
            check_request=self.check_request,
        )


# The earlier, private name; auth_interceptor.py still imports it.
_WrappingInterceptor = WrappingInterceptor


def _incoming_request_id(context: Context) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_HEADER and isinstance(value, str):
            return value if _SANE_REQUEST_ID.fullmatch(value) else None
    return None


class RequestIdInterceptor(WrappingInterceptor):
    """Sets `request_id_var` from the caller's `x-request-id` (or a new one) and echoes it.

    A caller's id is kept only if it is at most 128 characters of [A-Za-z0-9._-]: it ends up
    in every log line, so anything else (log injection, huge values) is replaced.
    """

    def __init__(self) -> None:
        self.around = self._with_request_id

    @asynccontextmanager
    async def _with_request_id(self, call: CallInfo, context: Context) -> AsyncIterator[None]:
        request_id = _incoming_request_id(context) or uuid.uuid4().hex
        request_id_var.set(request_id)
        await context.send_initial_metadata(((REQUEST_ID_HEADER, request_id),))
        yield


class DeadlineInterceptor(WrappingInterceptor):
    """Records the inbound call's deadline in `deadline_var` so outbound calls can inherit it."""

    def __init__(self) -> None:
        self.around = self._with_deadline

    @asynccontextmanager
    async def _with_deadline(self, call: CallInfo, context: Context) -> AsyncIterator[None]:
        remaining = context.time_remaining()
        if remaining is not None:
            deadline_var.set(time.monotonic() + remaining)
        yield


def _status_code(context: Context) -> grpc.StatusCode | None:
    code = context.code()
    if isinstance(code, int):
        return _CODES_BY_NUMBER.get(code, grpc.StatusCode.UNKNOWN)
    return code if isinstance(code, grpc.StatusCode) else None


def _cancellation_code(context: Context) -> grpc.StatusCode:
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        return grpc.StatusCode.DEADLINE_EXCEEDED
    return grpc.StatusCode.CANCELLED


class AccessLogInterceptor(WrappingInterceptor):
    """One log line and the go-grpc-prometheus metrics per call; hides unexpected errors.

    An exception escaping a handler is logged at ERROR (type and short message) and the
    caller gets INTERNAL "internal error": exception text can carry internals and secrets,
    and grpc's default would send it to the caller as UNKNOWN.
    """

    def __init__(self) -> None:
        self.around = self._observed

    @asynccontextmanager
    async def _observed(self, call: CallInfo, context: Context) -> AsyncIterator[None]:
        labels = (call.service, call.name, call.kind)
        GRPC_SERVER_STARTED.labels(*labels).inc()
        started = time.perf_counter()
        code = grpc.StatusCode.UNKNOWN
        try:
            yield
            code = _status_code(context) or grpc.StatusCode.OK
        except grpc.aio.AbortError:
            code = _status_code(context) or grpc.StatusCode.UNKNOWN
            raise
        except (asyncio.CancelledError, GeneratorExit):
            code = _cancellation_code(context)
            raise
        except Exception as error:
            code = grpc.StatusCode.INTERNAL
            logger.error(
                "unexpected error in %s",
                call.method,
                exc_info=error,
                extra={"method": call.method},
            )
            await context.abort(grpc.StatusCode.INTERNAL, "internal error")
        finally:
            elapsed = time.perf_counter() - started
            code_name = go_code_name(code)
            GRPC_SERVER_HANDLED.labels(*labels, code_name).inc()
            GRPC_SERVER_HANDLING_SECONDS.labels(*labels).observe(elapsed)
            if not call.method.startswith(_QUIET_METHOD_PREFIXES):
                logger.log(
                    logging.WARNING if code in _SERVER_FAULTS else logging.INFO,
                    "%s %s",
                    call.method,
                    code_name,
                    extra={
                        "method": call.method,
                        "grpc_type": call.kind,
                        "grpc_code": code_name,
                        "duration_ms": round(elapsed * 1000, 3),
                        "peer": context.peer(),
                    },
                )


def violation_field_path(violation: protovalidate.Violation) -> str:
    """The violated field as a dotted path, e.g. `messages[0].content` or `labels["env"]`."""
    path = violation.proto.field
    if path is None:
        return ""
    parts: list[str] = []
    for element in path.elements:
        part = element.field_name
        subscript = element.subscript
        if subscript is not None:
            value = subscript.value
            if isinstance(value, bool):
                part += "[true]" if value else "[false]"
            elif isinstance(value, str):
                part += '["' + value.replace("\\", "\\\\").replace('"', '\\"') + '"]'
            else:
                part += f"[{value}]"
        parts.append(part)
    return ".".join(parts)


_shared_validator: protovalidate.Validator | None = None


def _validator() -> protovalidate.Validator:
    # One instance for the process: it caches the compiled rules of every message it has seen.
    global _shared_validator
    if _shared_validator is None:
        _shared_validator = protovalidate.Validator()
    return _shared_validator


class ValidationInterceptor(WrappingInterceptor):
    """Rejects requests breaking their `buf.validate` rules with INVALID_ARGUMENT + BadRequest.

    Every request message is checked, including each message of a client stream.
    """

    def __init__(self, validator: protovalidate.Validator | None = None) -> None:
        self._validator = validator or _validator()
        self.check_request = self._check

    async def _check(self, request: Any, context: Context) -> None:
        if not isinstance(request, Message):
            return
        violations = self._validator.collect_violations(request)
        if violations:
            await abort_with_field_violations(
                context, [(violation_field_path(v), v.proto.message) for v in violations]
            )

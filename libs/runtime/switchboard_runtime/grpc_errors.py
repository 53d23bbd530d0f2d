"""Rich gRPC errors: abort with google.rpc details, and read them back on the client side.

Details travel the standard way, as a serialized `google.rpc.Status` in the trailing metadata
key `grpc-status-details-bin`, so grpcurl, Envoy's transcoder, grpc-status in any language and
`grpc_status.rpc_status.from_call` all understand them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final, NoReturn

import grpc
import grpc.aio
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2

__all__ = [
    "STATUS_DETAILS_KEY",
    "abort_resource_exhausted",
    "abort_with_details",
    "abort_with_field_violations",
    "field_violations_of",
    "rich_status_of",
]

STATUS_DETAILS_KEY: Final = "grpc-status-details-bin"


async def abort_with_details(
    context: grpc.aio.ServicerContext[Any, Any],
    code: grpc.StatusCode,
    message: str,
    details: Sequence[Message],
    *,
    extra_trailers: Sequence[tuple[str, str]] = (),
) -> NoReturn:
    """Abort the call with `code` and `message`, attaching `details` (google.rpc messages)."""
    status = status_pb2.Status(code=code.value[0], message=message)
    for detail in details:
        packed = any_pb2.Any()
        packed.Pack(detail)
        status.details.append(packed)
    await context.abort(
        code,
        message,
        trailing_metadata=((STATUS_DETAILS_KEY, status.SerializeToString()), *extra_trailers),
    )
    # context.abort always raises; this line keeps type checkers and readers certain of it.
    raise AssertionError("context.abort returned")


async def abort_with_field_violations(
    context: grpc.aio.ServicerContext[Any, Any],
    violations: Sequence[tuple[str, str]],
    *,
    message: str | None = None,
) -> NoReturn:
    """Abort INVALID_ARGUMENT with a google.rpc.BadRequest listing (field path, description).

    The default message names the first violation, e.g. `invalid request: name: must not be
    empty`, so a human reading only the status line still learns what to fix.
    """
    if message is None:
        if violations:
            field, description = violations[0]
            first = f"{field}: {description}" if field else description
            more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
            message = f"invalid request: {first}{more}"
        else:
            message = "invalid request"
    bad_request = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=field, description=description)
            for field, description in violations
        ]
    )
    await abort_with_details(context, grpc.StatusCode.INVALID_ARGUMENT, message, [bad_request])


async def abort_resource_exhausted(
    context: grpc.aio.ServicerContext[Any, Any],
    retry_after_seconds: float,
    message: str,
) -> NoReturn:
    """Abort RESOURCE_EXHAUSTED with a google.rpc.RetryInfo telling the caller when to retry.

    A `retry-after` trailer (whole seconds, rounded up) carries the same advice for HTTP
    clients: the edge turns it into the Retry-After header of the 429.
    """
    seconds = max(0.0, retry_after_seconds)
    whole = math.floor(seconds)
    retry_info = error_details_pb2.RetryInfo(
        retry_delay=duration_pb2.Duration(seconds=whole, nanos=round((seconds - whole) * 1e9))
    )
    await abort_with_details(
        context,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        message,
        [retry_info],
        extra_trailers=(("retry-after", str(max(1, math.ceil(seconds)))),),
    )


def rich_status_of(error: grpc.aio.AioRpcError) -> status_pb2.Status | None:
    """The google.rpc.Status a server attached to a failed call, or None if it sent none."""
    for key, value in error.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            return status_pb2.Status.FromString(value)
    return None


def field_violations_of(error: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    """The (field, description) pairs of the BadRequest detail of a failed call, if any."""
    status = rich_status_of(error)
    if status is None or status.code != code_pb2.INVALID_ARGUMENT:
        return []
    found: list[tuple[str, str]] = []
    for packed in status.details:
        bad_request = error_details_pb2.BadRequest()
        if packed.Unpack(bad_request):
            found.extend((v.field, v.description) for v in bad_request.field_violations)
    return found

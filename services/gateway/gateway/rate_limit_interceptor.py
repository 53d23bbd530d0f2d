"""Charges every call to its rate-limit buckets before it is validated or forwarded."""

from __future__ import annotations

from typing import Any

import grpc

from gateway.rate_limits import CLASS_NAMES, Bucket, Charge, RateLimiter
from switchboard.access.v1 import access_pb2
from switchboard_runtime.contract import policy_at
from switchboard_runtime.grpc_errors import abort_resource_exhausted
from switchboard_runtime.interceptors import (
    CallInfo,
    Context,
    Continuation,
    Handler,
    WrappingInterceptor,
    wrap_handler,
)
from switchboard_runtime.principal import principal_var


def client_address(context: Context) -> str:
    """The caller's address: the one Envoy appended to x-forwarded-for, else the peer."""
    for key, value in context.invocation_metadata() or ():
        if key == "x-forwarded-for" and isinstance(value, str) and value.strip():
            return value.rsplit(",", 1)[-1].strip()
    peer = context.peer() or "unknown"
    # "ipv4:1.2.3.4:5678" -> "1.2.3.4"; ipv6 peers keep their brackets.
    return peer.partition(":")[2].rpartition(":")[0] or peer


class RateLimitInterceptor(WrappingInterceptor):
    """Per-principal and per-tenant buckets by method class; per address and email for sign-in."""

    def __init__(
        self,
        limiter: RateLimiter,
        buckets: dict[int, Bucket],
        *,
        tenant_factor: float,
    ) -> None:
        self._limiter = limiter
        self._buckets = buckets
        self._tenant_factor = tenant_factor

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        policy = policy_at(handler_call_details.method)
        if policy is None or policy.rate_limit_class not in self._buckets:
            return handler
        rate_class = policy.rate_limit_class
        bucket = self._buckets[rate_class]
        name = CLASS_NAMES[rate_class]

        async def check(request: Any, context: Context) -> None:
            verdict = await self._limiter.take(
                self._charges(name, rate_class, bucket, request, context)
            )
            if not verdict.allowed:
                await abort_resource_exhausted(
                    context,
                    verdict.retry_after_seconds,
                    f"rate limit exceeded for {name} calls; retry after "
                    f"{verdict.retry_after_header} s",
                )

        return wrap_handler(
            handler, CallInfo.of(handler_call_details, handler), check_request=check
        )

    def _charges(
        self, name: str, rate_class: int, bucket: Bucket, request: Any, context: Context
    ) -> list[Charge]:
        principal = principal_var.get()
        charges: list[Charge] = []
        if principal is not None:
            charges.append(
                Charge(
                    f"{name}:p:{principal.tenant_id}:{principal.kind}:{principal.subject}", bucket
                )
            )
            if principal.tenant_id:
                charges.append(
                    Charge(f"{name}:t:{principal.tenant_id}", bucket.times(self._tenant_factor))
                )
        if principal is None or rate_class == access_pb2.RATE_LIMIT_CLASS_AUTH:
            charges.append(Charge(f"{name}:ip:{client_address(context)}", bucket))
        if rate_class == access_pb2.RATE_LIMIT_CLASS_AUTH:
            email = getattr(request, "email", "")
            if isinstance(email, str) and email:
                charges.append(Charge(f"{name}:email:{email.lower()}", bucket))
        return charges

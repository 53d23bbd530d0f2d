"""What the OpenAI and Anthropic adapters share: both SDKs are generated from the same
template (Stainless), so their clients, transports and exceptions behave alike.

The adapters call each SDK's documented low-level `client.post(path, body=..., cast_to=object)`
rather than the typed `create()`: the same client, authentication, headers, error mapping and
SSE decoding, minus the per-call transformation of typed parameters and the pydantic models of
the reply, which cost more CPU than the rest of the router together. Requests travel over the
SDKs' own aiohttp transport (`DefaultAioHttpClient`), cheaper per call than the default one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import aiohttp
import httpx2

from llm_router.errors import (
    ProviderError,
    ProviderRateLimitedError,
    ProviderRejectedError,
    ProviderTimeoutError,
    RetryableProviderError,
)
from llm_router.providers.base import retry_after_seconds, short

#: Statuses that mean "this request is wrong", whichever deployment gets it.
_CALLER_ERRORS: Final = frozenset({400, 413, 422})


@dataclass(frozen=True, slots=True)
class SdkErrors:
    """An SDK's exception classes (both SDKs have the same hierarchy under other names)."""

    status: type[Exception]
    timeout: type[Exception]
    connection: type[Exception]


def map_sdk_error(error: Exception, sdk: SdkErrors) -> ProviderError:
    """The router's view of an exception out of an SDK (or its transport)."""
    if isinstance(error, sdk.status):
        status: int = error.status_code  # type: ignore[attr-defined]
        message: str = error.message  # type: ignore[attr-defined]
        if status == 429:
            headers = error.response.headers  # type: ignore[attr-defined]
            return ProviderRateLimitedError(
                "429 rate limited", retry_after_s=retry_after_seconds(headers)
            )
        if status in _CALLER_ERRORS:
            return ProviderRejectedError(f"{status} {short(message)}")
        if status in (401, 403):
            # Never echo the body: it may quote part of the key.
            return RetryableProviderError(f"{status} the deployment's API key was refused")
        return RetryableProviderError(f"{status} {short(message, 120)}")
    transport = transport_failure(error)
    if transport is not None:
        return transport
    if isinstance(error, sdk.timeout | httpx2.TimeoutException):
        return ProviderTimeoutError("the provider timed out")
    if isinstance(error, sdk.connection):
        cause = error.__cause__
        detail = type(cause).__name__ if cause is not None else "connection error"
        return RetryableProviderError(f"connection failed ({detail})")
    if isinstance(error, httpx2.TransportError):
        return RetryableProviderError(f"connection failed ({type(error).__name__})")
    return RetryableProviderError(f"malformed answer ({type(error).__name__})")


def transport_failure(error: BaseException) -> ProviderError | None:
    """A connection-level cause in `error`'s chain, named by its own type.

    The aiohttp transport maps some failures oddly (a server that disconnects surfaces as a
    connect timeout), so the original exception decides.
    """
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, aiohttp.ServerTimeoutError):
            return ProviderTimeoutError("the provider timed out")
        if isinstance(seen, aiohttp.ClientError):
            return RetryableProviderError(f"connection failed ({type(seen).__name__})")
        seen = seen.__cause__ or seen.__context__
    return None


def as_mapping(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def number(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0

"""What the router needs from a provider: a whole reply, or a stream of text deltas."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from email.utils import parsedate_to_datetime
from typing import Protocol

from llm_router.domain import Completion, CompletionRequest, StreamEvent


class Provider(Protocol):
    """One deployment's client. Methods raise only `ProviderError`s (see errors.py)."""

    async def complete(self, request: CompletionRequest, *, transport_timeout: float) -> Completion:
        """The whole reply; `transport_timeout` bounds the transport's waits (the router also
        bounds the attempt as a whole)."""
        ...

    def stream(
        self, request: CompletionRequest, *, transport_timeout: float
    ) -> AsyncGenerator[StreamEvent, None]:
        """Text deltas, then exactly one `StreamEnd`. Closing the iterator early (or cancelling
        the task reading it) closes the HTTP stream at once."""
        ...

    async def aclose(self) -> None:
        """Release connections; in-flight calls may fail afterwards."""
        ...


def retry_after_seconds(headers: object) -> float | None:
    """The wait a 429 asks for: `retry-after-ms`, or `retry-after` in seconds or as a date."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    millis = get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from datetime import UTC, datetime

        when = parsedate_to_datetime(value)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def short(text: object, limit: int = 200) -> str:
    """A one-line, bounded description for attempt reports and logs."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."

"""Bytes for the wire: compact JSON and server-sent events, shared by both provider dialects."""

from __future__ import annotations

import functools
import json

__all__ = ["json_bytes", "json_string", "sse_event"]


def json_bytes(data: object) -> bytes:
    """`data` as compact JSON (no spaces), ASCII-only like the providers' own responses."""
    return json.dumps(data, separators=(",", ":")).encode()


@functools.lru_cache(maxsize=4096)
def json_string(text: str) -> bytes:
    """`text` as a JSON string literal, quotes included.

    Cached because streamed replies repeat the same tokens (filler words, canned replies) on
    every request, and encoding them is most of a stream's cost in the stand-in.
    """
    return json.dumps(text).encode()


def sse_event(data: bytes, *, event: str | None = None) -> bytes:
    """One server-sent event: an optional ``event:`` line and a ``data:`` line."""
    head = b"" if event is None else f"event: {event}\n".encode()
    return head + b"data: " + data + b"\n\n"

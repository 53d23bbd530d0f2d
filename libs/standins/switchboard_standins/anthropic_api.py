"""Anthropic stand-in: ``POST /v1/messages`` and ``GET /v1/models`` in Anthropic's wire format.

What the real API does and this one does too:

- The key in ``x-api-key`` or as ``Authorization: Bearer`` (which the anthropic SDK 2.x sends):
  401 ``authentication_error`` when missing or wrong; ``anthropic-version`` is required (400).
  Errors come in Anthropic's shape ``{"type": "error", "error": {"type", "message"},
  "request_id"}``, and every response carries the request id in a ``request-id`` header.
- Validation of what Switchboard sends: model, ``max_tokens`` (required, >= 1), messages (roles
  "user"/"assistant", content as a string or blocks), top-level ``system`` (string or text
  blocks), temperature 0..1, ``stop_sequences``, ``stream``. With a configured model list, an
  unknown model gets 404 ``not_found_error``.
- A ``message`` JSON, or with ``stream: true`` the real event sequence with ``event:`` lines:
  message_start, content_block_start, ping, content_block_delta (text_delta)...,
  content_block_stop, message_delta (stop_reason, usage.output_tokens), message_stop.
- ``stop_reason`` is "end_turn", "max_tokens" or "stop_sequence" (with ``stop_sequence`` set).
"""

from __future__ import annotations

import json
import secrets
from typing import Any, Final

from aiohttp import web

from switchboard_standins.exchange import (
    ApiError,
    Generation,
    serve_generation,
    serve_model_list,
)
from switchboard_standins.replies import FinishReason, Reply, count_tokens
from switchboard_standins.wire import json_bytes, json_string, sse_event

__all__ = ["DEFAULT_MODELS", "AnthropicDialect", "EventRenderer", "add_anthropic_routes"]

DEFAULT_MODELS: Final = ("claude-sonnet-4-6", "claude-haiku-4-5")
_ROLES: Final = frozenset({"user", "assistant"})
_MODEL_CREATED_AT: Final = "2025-01-01T00:00:00Z"
_INJECTED: Final = " (injected by the Switchboard stand-in)"
_STOP_REASONS: Final = {
    FinishReason.END: "end_turn",
    FinishReason.MAX_TOKENS: "max_tokens",
    FinishReason.STOP_SEQUENCE: "stop_sequence",
}
# status -> (error type, message), for injected errors.
_FAULT_ERRORS: Final[dict[int, tuple[str, str]]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use this resource."),
    404: ("not_found_error", "Not found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit."),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out."),
    529: ("overloaded_error", "Overloaded"),
}


class AnthropicDialect:
    """Anthropic's Messages wire format (see the module docstring)."""

    request_id_header = "request-id"

    def check_headers(self, request: web.BaseRequest, api_key: str) -> ApiError | None:
        key = request.headers.get("x-api-key")
        problem = "invalid x-api-key"
        if not key:
            # anthropic SDK 2.x sends its api_key as a Bearer token; the API takes either.
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return ApiError(401, "x-api-key header is required", "authentication_error")
            key, problem = token.strip(), "invalid bearer token"
        if not secrets.compare_digest(key.encode(), api_key.encode()):
            return ApiError(401, problem, "authentication_error")
        if not request.headers.get("anthropic-version"):
            return ApiError(400, "anthropic-version: header is required", "invalid_request_error")
        return None

    def parse(self, body: bytes, models: tuple[str, ...] | None) -> Generation | ApiError:
        try:
            data = json.loads(body)
        except ValueError:
            return _invalid("There was an issue with your request body: it is not valid JSON")
        if not isinstance(data, dict):
            return _invalid("Input should be a valid dictionary")
        return _parse_messages_request(data, models)

    def fault_error(self, status: int) -> ApiError:
        default = (
            ("api_error", "Internal server error")
            if status >= 500
            else (
                "invalid_request_error",
                "Request failed.",
            )
        )
        kind, message = _FAULT_ERRORS.get(status, default)
        return ApiError(status, message + _INJECTED, kind)

    def error_body(self, error: ApiError, request_id: str) -> bytes:
        return json_bytes(
            {
                "type": "error",
                "error": {"type": error.type, "message": error.message},
                "request_id": f"req_{request_id}",
            }
        )

    def json_body(self, generation: Generation, reply: Reply, request_id: str) -> bytes:
        return json_bytes(
            {
                "id": f"msg_{request_id}",
                "type": "message",
                "role": "assistant",
                "model": generation.model,
                "content": [{"type": "text", "text": reply.text}],
                "stop_reason": _STOP_REASONS[reply.finish],
                "stop_sequence": reply.stop_sequence,
                "usage": _usage(generation.prompt_tokens, len(reply.tokens)),
            }
        )

    def stream_renderer(
        self, generation: Generation, reply: Reply, request_id: str
    ) -> EventRenderer:
        return EventRenderer(generation, reply, request_id)

    def model_list_body(self, models: tuple[str, ...] | None) -> bytes:
        listed = DEFAULT_MODELS if models is None else models
        return json_bytes(
            {
                "data": [
                    {
                        "type": "model",
                        "id": model,
                        "display_name": model,
                        "created_at": _MODEL_CREATED_AT,
                    }
                    for model in listed
                ],
                "has_more": False,
                "first_id": listed[0] if listed else None,
                "last_id": listed[-1] if listed else None,
            }
        )


class EventRenderer:
    """Messages streaming events for one reply; content deltas come from one template."""

    __slots__ = ("_generation", "_reply", "_request_id")

    _TOKEN_PREFIX: Final = (
        b"event: content_block_delta\n"
        b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":'
    )
    _TOKEN_SUFFIX: Final = b"}}\n\n"

    def __init__(self, generation: Generation, reply: Reply, request_id: str) -> None:
        self._generation = generation
        self._reply = reply
        self._request_id = request_id

    def preamble(self) -> bytes:
        generation = self._generation
        # The real API reports a token or so of output at message_start; message_delta's
        # cumulative count is the one clients keep.
        start = {
            "type": "message_start",
            "message": {
                "id": f"msg_{self._request_id}",
                "type": "message",
                "role": "assistant",
                "model": generation.model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": _usage(generation.prompt_tokens, 1),
            },
        }
        block = {"type": "content_block_start", "index": 0, "content_block": _EMPTY_TEXT}
        return (
            _event("message_start", start)
            + _event("content_block_start", block)
            + _event("ping", {"type": "ping"})
        )

    def token(self, text: str) -> bytes:
        return self._TOKEN_PREFIX + json_string(text) + self._TOKEN_SUFFIX

    def epilogue(self) -> bytes:
        reply = self._reply
        delta = {
            "type": "message_delta",
            "delta": {
                "stop_reason": _STOP_REASONS[reply.finish],
                "stop_sequence": reply.stop_sequence,
            },
            "usage": {"output_tokens": len(reply.tokens)},
        }
        return (
            _event("content_block_stop", {"type": "content_block_stop", "index": 0})
            + _event("message_delta", delta)
            + _event("message_stop", {"type": "message_stop"})
        )


_EMPTY_TEXT: Final = {"type": "text", "text": ""}


def add_anthropic_routes(app: web.Application) -> None:
    """Serve the Anthropic paths from `app` (which must carry a `StandinState`)."""
    app.router.add_post("/v1/messages", _messages)
    app.router.add_get("/v1/models", _models)


_DIALECT: Final = AnthropicDialect()


async def _messages(request: web.Request) -> web.StreamResponse:
    return await serve_generation(request, _DIALECT)


async def _models(request: web.Request) -> web.StreamResponse:
    return await serve_model_list(request, _DIALECT)


def _parse_messages_request(
    data: dict[str, Any], models: tuple[str, ...] | None
) -> Generation | ApiError:
    model = data.get("model")
    if model is None:
        return _invalid("model: Field required")
    if not isinstance(model, str):
        return _invalid("model: Input should be a valid string")
    max_tokens = data.get("max_tokens")
    if max_tokens is None:
        return _invalid("max_tokens: Field required")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        return _invalid("max_tokens: Input should be a valid integer")
    if max_tokens < 1:
        return _invalid("max_tokens: Input should be greater than or equal to 1")
    conversation = _parse_messages(data.get("messages"))
    if isinstance(conversation, ApiError):
        return conversation
    system = _text_of(data.get("system"), "system", required=False)
    if isinstance(system, ApiError):
        return system
    problem = _check_temperature(data.get("temperature"))
    if problem is not None:
        return problem
    stop = data.get("stop_sequences")
    if stop is None:
        stop = []
    if not isinstance(stop, list) or not all(isinstance(item, str) for item in stop):
        return _invalid("stop_sequences: Input should be a valid list of strings")
    stream = data.get("stream")
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        return _invalid("stream: Input should be a valid boolean")
    if models is not None and model not in models:
        return ApiError(404, f"model: {model}", "not_found_error")
    prompt, message_tokens = conversation
    return Generation(
        model=model,
        stream=stream,
        prompt=prompt,
        prompt_tokens=message_tokens + count_tokens(system),
        max_tokens=max_tokens,
        stop=tuple(stop),
    )


def _parse_messages(messages: object) -> tuple[str, int] | ApiError:
    """The last user message's text and the token count of all messages."""
    if messages is None:
        return _invalid("messages: Field required")
    if not isinstance(messages, list):
        return _invalid("messages: Input should be a valid list")
    if not messages:
        return _invalid("messages: at least one message is required")
    prompt = ""
    tokens = 0
    for index, message in enumerate(messages):
        where = f"messages.{index}"
        if not isinstance(message, dict):
            return _invalid(f"{where}: Input should be a valid dictionary")
        role = message.get("role")
        if role not in _ROLES:
            return _invalid(f"{where}.role: Input should be 'user' or 'assistant'")
        text = _text_of(message.get("content"), f"{where}.content", required=True)
        if isinstance(text, ApiError):
            return text
        tokens += count_tokens(text)
        if role == "user":
            prompt = text
    return prompt, tokens


def _text_of(content: object, where: str, *, required: bool) -> str | ApiError:
    """The text of a string or of a list of content blocks (non-text blocks add nothing)."""
    if content is None:
        return _invalid(f"{where}: Field required") if required else ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return _invalid(f"{where}: Input should be a valid string or list of content blocks")
    texts: list[str] = []
    for index, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            return _invalid(f"{where}.{index}: Input should be a valid content block")
        if block["type"] == "text":
            text = block.get("text")
            if not isinstance(text, str):
                return _invalid(f"{where}.{index}.text: Input should be a valid string")
            texts.append(text)
        elif block["type"] == "tool_result":
            # A tool's output is part of the prompt the model reads.
            nested = _text_of(block.get("content"), f"{where}.{index}.content", required=False)
            if isinstance(nested, ApiError):
                return nested
            texts.append(nested)
    return "\n".join(texts)


def _check_temperature(temperature: object) -> ApiError | None:
    if temperature is None:
        return None
    if isinstance(temperature, bool) or not isinstance(temperature, int | float):
        return _invalid("temperature: Input should be a valid number")
    if temperature < 0:
        return _invalid("temperature: Input should be greater than or equal to 0")
    if temperature > 1:
        return _invalid("temperature: Input should be less than or equal to 1")
    return None


def _usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def _invalid(message: str) -> ApiError:
    return ApiError(400, message, "invalid_request_error")


def _event(name: str, data: object) -> bytes:
    return sse_event(json_bytes(data), event=name)

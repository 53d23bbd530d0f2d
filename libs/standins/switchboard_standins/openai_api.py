"""OpenAI stand-in: ``POST /v1/chat/completions`` and ``GET /v1/models`` in OpenAI's wire format.

What the real API does and this one does too:

- ``Authorization: Bearer <key>``; a missing or wrong key gets 401 with OpenAI's error object
  ``{"error": {"message", "type", "param", "code"}}``.
- Validation of the parameters Switchboard sends (model, messages and their roles and content,
  max_tokens / max_completion_tokens >= 1, temperature 0..2, stop, stream, stream_options),
  answered with 400 and the ``param``/``code`` OpenAI uses. With a configured model list, an
  unknown model gets 404 ``model_not_found``.
- ``chat.completion`` JSON, or with ``stream: true`` server-sent ``chat.completion.chunk`` events:
  a role delta, content deltas, a delta with ``finish_reason``, a usage chunk (``choices: []``)
  when ``stream_options.include_usage`` is true, then ``data: [DONE]``.
- ``finish_reason`` is "length" when max tokens cut the reply, "stop" otherwise; ``stop`` takes a
  string or a list of up to 4.

Only ``n = 1`` is supported (Switchboard never asks for more).
"""

from __future__ import annotations

import json
import secrets
import time
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

__all__ = ["DEFAULT_MODELS", "OpenAIDialect", "add_openai_routes"]

DEFAULT_MODELS: Final = ("gpt-4o-mini", "gpt-4o")
_ROLES: Final = ("system", "assistant", "user", "function", "tool", "developer")
# Roles whose messages may come without content (an assistant turn that only calls tools).
_CONTENT_OPTIONAL: Final = frozenset({"assistant", "function"})
_MAX_STOP_SEQUENCES: Final = 4
_FINGERPRINT: Final = "fp_standin"
_CREATED: Final = 1_700_000_000
_NO_KEY: Final = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)
_BAD_JSON: Final = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
    "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was "
    "not valid JSON.)"
)
_INJECTED: Final = " (injected by the Switchboard stand-in)"
# status -> (message, type, code), for injected errors.
_FAULT_ERRORS: Final[dict[int, tuple[str, str, str | None]]] = {
    400: ("Invalid request.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    404: ("The model does not exist.", "invalid_request_error", "model_not_found"),
    429: ("Rate limit reached for requests.", "requests", "rate_limit_exceeded"),
    500: (
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
    ),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}


class OpenAIDialect:
    """OpenAI's Chat Completions wire format (see the module docstring)."""

    request_id_header = "x-request-id"

    def check_headers(self, request: web.BaseRequest, api_key: str) -> ApiError | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return ApiError(401, _NO_KEY, "invalid_request_error")
        if not secrets.compare_digest(token.encode(), api_key.encode()):
            message = (
                f"Incorrect API key provided: {_mask(token)}. You can find your API key at "
                "https://platform.openai.com/account/api-keys."
            )
            return ApiError(401, message, "invalid_request_error", code="invalid_api_key")
        return None

    def parse(self, body: bytes, models: tuple[str, ...] | None) -> Generation | ApiError:
        try:
            data = json.loads(body)
        except ValueError:
            return ApiError(400, _BAD_JSON, "invalid_request_error")
        if not isinstance(data, dict):
            return _invalid_type("body", "an object", data)
        return _parse_chat_request(data, models)

    def fault_error(self, status: int) -> ApiError:
        default = (
            ("The server had an error while processing your request.", "server_error", None)
            if status >= 500
            else ("Request failed.", "invalid_request_error", None)
        )
        message, kind, code = _FAULT_ERRORS.get(status, default)
        return ApiError(status, message + _INJECTED, kind, code=code)

    def error_body(self, error: ApiError, request_id: str) -> bytes:
        return json_bytes(
            {
                "error": {
                    "message": error.message,
                    "type": error.type,
                    "param": error.param,
                    "code": error.code,
                }
            }
        )

    def json_body(self, generation: Generation, reply: Reply, request_id: str) -> bytes:
        completion_tokens = len(reply.tokens)
        return json_bytes(
            {
                "id": f"chatcmpl-{request_id}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": generation.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": reply.text,
                            "refusal": None,
                            "annotations": [],
                        },
                        "logprobs": None,
                        "finish_reason": _finish_reason(reply),
                    }
                ],
                "usage": _usage(generation.prompt_tokens, completion_tokens),
                "service_tier": "default",
                "system_fingerprint": _FINGERPRINT,
            }
        )

    def stream_renderer(
        self, generation: Generation, reply: Reply, request_id: str
    ) -> ChunkRenderer:
        return ChunkRenderer(generation, reply, request_id)

    def model_list_body(self, models: tuple[str, ...] | None) -> bytes:
        return json_bytes(
            {
                "object": "list",
                "data": [
                    {"id": model, "object": "model", "created": _CREATED, "owned_by": "standin"}
                    for model in (DEFAULT_MODELS if models is None else models)
                ],
            }
        )


class ChunkRenderer:
    """``chat.completion.chunk`` events for one reply, serialized from templates.

    Every chunk of a stream shares its head (id, created, model, ...), so it is serialized once
    and each content delta costs one ``json.dumps`` of the token text.
    """

    __slots__ = ("_common", "_generation", "_reply", "_token_prefix")

    _TOKEN_SUFFIX: Final = b'},"logprobs":null,"finish_reason":null}]}\n\n'

    def __init__(self, generation: Generation, reply: Reply, request_id: str) -> None:
        self._generation = generation
        self._reply = reply
        self._common = (
            f'"id":{json.dumps(f"chatcmpl-{request_id}")},"object":"chat.completion.chunk",'
            f'"created":{int(time.time())},"model":{json.dumps(generation.model)},'
            f'"service_tier":"default","system_fingerprint":"{_FINGERPRINT}"'
        )
        # With include_usage, every chunk carries "usage": null until the final usage chunk.
        usage = ',"usage":null' if generation.stream_usage else ""
        self._token_prefix = (
            f'data: {{{self._common}{usage},"choices":[{{"index":0,"delta":{{"content":'
        ).encode()

    def preamble(self) -> bytes:
        return self._choice_chunk('{"role":"assistant","content":"","refusal":null}', "null")

    def token(self, text: str) -> bytes:
        return self._token_prefix + json_string(text) + self._TOKEN_SUFFIX

    def epilogue(self) -> bytes:
        finish = self._choice_chunk("{}", json.dumps(_finish_reason(self._reply)))
        if self._generation.stream_usage:
            usage = json_bytes(_usage(self._generation.prompt_tokens, len(self._reply.tokens)))
            chunk = f'{{{self._common},"choices":[],"usage":'.encode() + usage + b"}"
            finish += sse_event(chunk)
        return finish + sse_event(b"[DONE]")

    def _choice_chunk(self, delta: str, finish_reason: str) -> bytes:
        usage = ',"usage":null' if self._generation.stream_usage else ""
        return sse_event(
            f'{{{self._common}{usage},"choices":[{{"index":0,"delta":{delta},'
            f'"logprobs":null,"finish_reason":{finish_reason}}}]}}'.encode()
        )


def add_openai_routes(app: web.Application) -> None:
    """Serve the OpenAI paths from `app` (which must carry a `StandinState`)."""
    app.router.add_post("/v1/chat/completions", _chat_completions)
    app.router.add_get("/v1/models", _models)


_DIALECT: Final = OpenAIDialect()


async def _chat_completions(request: web.Request) -> web.StreamResponse:
    return await serve_generation(request, _DIALECT)


async def _models(request: web.Request) -> web.StreamResponse:
    return await serve_model_list(request, _DIALECT)


def _parse_chat_request(
    data: dict[str, Any], models: tuple[str, ...] | None
) -> Generation | ApiError:
    model = data.get("model")
    if model is None:
        return _missing("model")
    if not isinstance(model, str):
        return _invalid_type("model", "a string", model)
    conversation = _parse_messages(data.get("messages"))
    if isinstance(conversation, ApiError):
        return conversation
    max_tokens = _max_tokens(data)
    if isinstance(max_tokens, ApiError):
        return max_tokens
    problem = _check_temperature(data.get("temperature"))
    if problem is not None:
        return problem
    stop = _stop_sequences(data.get("stop"))
    if isinstance(stop, ApiError):
        return stop
    streaming = _stream_flags(data)
    if isinstance(streaming, ApiError):
        return streaming
    n = data.get("n")
    if n is not None and n != 1:
        return ApiError(
            400, "The stand-in only supports n = 1.", "invalid_request_error", "n", "invalid_value"
        )
    if models is not None and model not in models:
        return ApiError(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            "invalid_request_error",
            None,
            "model_not_found",
        )
    prompt, prompt_tokens = conversation
    stream, stream_usage = streaming
    return Generation(
        model=model,
        stream=stream,
        prompt=prompt,
        prompt_tokens=prompt_tokens,
        max_tokens=max_tokens,
        stop=stop,
        stream_usage=stream_usage,
    )


def _parse_messages(messages: object) -> tuple[str, int] | ApiError:
    """The last user message's text and the token count of all messages."""
    if messages is None:
        return _missing("messages")
    if not isinstance(messages, list):
        return _invalid_type("messages", "an array of objects", messages)
    if not messages:
        return ApiError(
            400,
            "Invalid 'messages': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead.",
            "invalid_request_error",
            "messages",
            "empty_array",
        )
    prompt = ""
    prompt_tokens = 0
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            return _invalid_type(where, "an object", message)
        role = message.get("role")
        if role is None:
            return _missing(f"{where}.role")
        if role not in _ROLES:
            supported = ", ".join(f"'{r}'" for r in _ROLES[:-1]) + f", and '{_ROLES[-1]}'"
            return ApiError(
                400,
                f"Invalid value: {json.dumps(role)}. Supported values are: {supported}.",
                "invalid_request_error",
                f"{where}.role",
                "invalid_value",
            )
        text = _content_text(message.get("content"), f"{where}.content", role)
        if isinstance(text, ApiError):
            return text
        prompt_tokens += count_tokens(text)
        if role == "user":
            prompt = text
    return prompt, prompt_tokens


def _max_tokens(data: dict[str, Any]) -> int | ApiError | None:
    """The reply's token limit; max_completion_tokens wins over the older max_tokens."""
    limits: dict[str, int] = {}
    for name in ("max_tokens", "max_completion_tokens"):
        value = data.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            return _invalid_type(name, "an integer", value)
        if value < 1:
            return ApiError(
                400,
                f"Invalid '{name}': integer below minimum value. Expected a value >= 1, "
                f"but got {value} instead.",
                "invalid_request_error",
                name,
                "integer_below_min_value",
            )
        limits[name] = value
    return limits.get("max_completion_tokens", limits.get("max_tokens"))


def _check_temperature(temperature: object) -> ApiError | None:
    if temperature is None:
        return None
    if isinstance(temperature, bool) or not isinstance(temperature, int | float):
        return _invalid_type("temperature", "a decimal", temperature)
    if temperature < 0:
        problem, bound, code = "below minimum", ">= 0", "decimal_below_min_value"
    elif temperature > 2:
        problem, bound, code = "above maximum", "<= 2", "decimal_above_max_value"
    else:
        return None
    return ApiError(
        400,
        f"Invalid 'temperature': decimal {problem} value. Expected a value {bound}, "
        f"but got {temperature} instead.",
        "invalid_request_error",
        "temperature",
        code,
    )


def _stream_flags(data: dict[str, Any]) -> tuple[bool, bool] | ApiError:
    """Whether to stream, and whether to end the stream with a usage chunk."""
    stream = data.get("stream")
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        return _invalid_type("stream", "a boolean", stream)
    options = data.get("stream_options")
    if options is None:
        return stream, False
    if not isinstance(options, dict):
        return _invalid_type("stream_options", "an object", options)
    if not stream:
        return ApiError(
            400,
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "invalid_request_error",
            "stream_options",
            "invalid_value",
        )
    return stream, bool(options.get("include_usage"))


def _content_text(content: object, where: str, role: str) -> str | ApiError:
    """The text of a message's content: a string, or the text parts of an array of parts."""
    if content is None:
        return "" if role in _CONTENT_OPTIONAL else _missing(where)
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return _invalid_type(where, "a string or an array of content parts", content)
    texts: list[str] = []
    for index, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            return _invalid_type(f"{where}[{index}]", "a content part object", part)
        if part["type"] == "text":
            text = part.get("text")
            if not isinstance(text, str):
                return _invalid_type(f"{where}[{index}].text", "a string", text)
            texts.append(text)
    return "\n".join(texts)


def _stop_sequences(stop: object) -> tuple[str, ...] | ApiError:
    if stop is None:
        return ()
    if isinstance(stop, str):
        return (stop,)
    if not isinstance(stop, list) or not all(isinstance(item, str) for item in stop):
        return _invalid_type("stop", "a string or an array of strings", stop)
    if len(stop) > _MAX_STOP_SEQUENCES:
        return ApiError(
            400,
            f"Invalid 'stop': array too long. Expected an array with maximum length "
            f"{_MAX_STOP_SEQUENCES}, but got an array with length {len(stop)} instead.",
            "invalid_request_error",
            "stop",
            "array_above_max_length",
        )
    return tuple(stop)


def _finish_reason(reply: Reply) -> str:
    return "length" if reply.finish is FinishReason.MAX_TOKENS else "stop"


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _missing(param: str) -> ApiError:
    return ApiError(
        400,
        f"Missing required parameter: '{param}'.",
        "invalid_request_error",
        param,
        "missing_required_parameter",
    )


def _invalid_type(param: str, expected: str, value: object) -> ApiError:
    return ApiError(
        400,
        f"Invalid type for '{param}': expected {expected}, but got {_json_type(value)} instead.",
        "invalid_request_error",
        param,
        "invalid_type",
    )


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _mask(key: str) -> str:
    return f"{key[:3]}{'*' * 8}{key[-4:]}" if len(key) > 8 else "*" * len(key)

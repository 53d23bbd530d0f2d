"""OpenAI's Chat Completions and Models API, served from the LLM router.

Teams that already call OpenAI point their SDK's `base_url` at the edge: the body of
`POST /v1/chat/completions` arrives here raw (google.api.HttpBody), becomes a router
Complete or StreamComplete call made with the caller's own credentials, and the answer goes
back in OpenAI's JSON shape, or as OpenAI's server-sent event chunks ending with
`data: [DONE]` when `"stream": true`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Final

import grpc
from google.api import httpbody_pb2

from gateway.forwarding import Upstreams, forwarded_metadata, relay_error, upstream_timeout
from switchboard.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from switchboard.llm.v1 import llm_pb2, llm_pb2_grpc
from switchboard_runtime.grpc_errors import abort_with_field_violations

Context = grpc.aio.ServicerContext[Any, Any]

_ROLES: Final = {
    "system": llm_pb2.CHAT_ROLE_SYSTEM,
    "developer": llm_pb2.CHAT_ROLE_SYSTEM,
    "user": llm_pb2.CHAT_ROLE_USER,
    "assistant": llm_pb2.CHAT_ROLE_ASSISTANT,
}
_FINISH_REASONS: Final = {
    llm_pb2.FINISH_REASON_STOP: "stop",
    llm_pb2.FINISH_REASON_LENGTH: "length",
    llm_pb2.FINISH_REASON_CONTENT_FILTER: "content_filter",
}
_JSON: Final = "application/json"
_EVENT_STREAM: Final = "text/event-stream"


class InvalidChatRequestError(ValueError):
    def __init__(self, field: str, description: str) -> None:
        super().__init__(f"{field}: {description}")
        self.field = field
        self.description = description


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """What an OpenAI chat completion request asks of the router."""

    params: llm_pb2.CompletionParams
    stream: bool
    include_usage: bool


def _text_of(content: Any, field: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for index, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text":
                raise InvalidChatRequestError(f"{field}[{index}]", "only text parts are supported")
            parts.append(str(part.get("text", "")))
        return "".join(parts)
    if content is None:
        return ""
    raise InvalidChatRequestError(field, "must be a string or a list of text parts")


def _number(body: dict[str, Any], name: str, kind: type) -> Any:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        raise InvalidChatRequestError(name, f"must be a{'n integer' if kind is int else ' number'}")
    return kind(value)


def parse_chat_request(raw: bytes) -> ChatRequest:
    """The router call an OpenAI request body describes; InvalidChatRequestError if none."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidChatRequestError("", f"the body is not valid JSON: {error}") from error
    if not isinstance(body, dict):
        raise InvalidChatRequestError("", "the body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidChatRequestError("model", "is required")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidChatRequestError("messages", "must be a non-empty list")
    params = llm_pb2.CompletionParams(model=model)
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            raise InvalidChatRequestError(
                f"messages[{index}].role", f"must be one of {', '.join(sorted(_ROLES))}"
            )
        params.messages.append(
            llm_pb2.ChatMessage(
                role=_ROLES[message["role"]],
                content=_text_of(message.get("content"), f"messages[{index}].content"),
            )
        )
    if body.get("n") not in (None, 1):
        raise InvalidChatRequestError("n", "only n=1 is supported")
    if (temperature := _number(body, "temperature", float)) is not None:
        params.temperature = temperature
    if (top_p := _number(body, "top_p", float)) is not None:
        params.top_p = top_p
    max_tokens = _number(body, "max_completion_tokens", int)
    if max_tokens is None:
        max_tokens = _number(body, "max_tokens", int)
    if max_tokens is not None:
        params.max_tokens = max_tokens
    stop = body.get("stop")
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else stop
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise InvalidChatRequestError("stop", "must be a string or a list of strings")
        params.stop.extend(stops)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidChatRequestError("stream", "must be a boolean")
    options = body.get("stream_options") or {}
    include_usage = bool(isinstance(options, dict) and options.get("include_usage"))
    return ChatRequest(params=params, stream=stream, include_usage=include_usage)


def _usage(usage: llm_pb2.Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens or usage.prompt_tokens + usage.completion_tokens,
    }


def _body(content_type: str, document: Any) -> gateway_pb2.CreateChatCompletionResponse:
    data = json.dumps(document, separators=(",", ":")).encode()
    if content_type == _EVENT_STREAM:
        data = b"data: " + data + b"\n\n"
    return gateway_pb2.CreateChatCompletionResponse(
        http_body=httpbody_pb2.HttpBody(content_type=content_type, data=data)
    )


class OpenAiCompatServicer(gateway_pb2_grpc.OpenAiCompatServiceServicer):
    def __init__(self, upstreams: Upstreams) -> None:
        self._upstreams = upstreams

    def _router(self) -> llm_pb2_grpc.LlmServiceAsyncStub:
        stub: llm_pb2_grpc.LlmServiceAsyncStub = llm_pb2_grpc.LlmServiceStub(
            self._upstreams.channel("llm-router")
        )
        return stub

    async def CreateChatCompletion(
        self, request: gateway_pb2.CreateChatCompletionRequest, context: Context
    ) -> AsyncIterator[gateway_pb2.CreateChatCompletionResponse]:
        try:
            chat = parse_chat_request(request.http_body.data)
        except InvalidChatRequestError as error:
            await abort_with_field_violations(context, [(error.field, error.description)])
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        if chat.stream:
            async for chunk in self._stream(chat, completion_id, created, context):
                yield chunk
            return
        try:
            answer = await self._router().Complete(
                llm_pb2.CompleteRequest(params=chat.params),
                metadata=forwarded_metadata(context),
                timeout=upstream_timeout(context, streaming=False),
            )
        except grpc.aio.AioRpcError as error:
            await relay_error(context, error, "llm-router")
        yield _body(
            _JSON,
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": chat.params.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": answer.text, "refusal": None},
                        "finish_reason": _FINISH_REASONS.get(answer.finish_reason, "stop"),
                        "logprobs": None,
                    }
                ],
                "usage": _usage(answer.usage),
            },
        )

    async def _stream(
        self, chat: ChatRequest, completion_id: str, created: int, context: Context
    ) -> AsyncIterator[gateway_pb2.CreateChatCompletionResponse]:
        def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            return {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": chat.params.model,
                "choices": [
                    {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
                ],
            }

        call = self._router().StreamComplete(
            llm_pb2.StreamCompleteRequest(params=chat.params),
            metadata=forwarded_metadata(context),
            timeout=upstream_timeout(context, streaming=True),
        )
        started = False
        try:
            async for event in call:
                if not started:
                    started = True
                    yield _body(_EVENT_STREAM, chunk({"role": "assistant", "content": ""}, None))
                if event.HasField("summary"):
                    summary = event.summary
                    reason = _FINISH_REASONS.get(summary.finish_reason, "stop")
                    yield _body(_EVENT_STREAM, chunk({}, reason))
                    if chat.include_usage:
                        usage_chunk = chunk({}, None) | {
                            "choices": [],
                            "usage": _usage(summary.usage),
                        }
                        yield _body(_EVENT_STREAM, usage_chunk)
                else:
                    yield _body(_EVENT_STREAM, chunk({"content": event.delta}, None))
        except grpc.aio.AioRpcError as error:
            if not started:
                await relay_error(context, error, "llm-router")
            # Mid-stream the HTTP status is already 200: end with an error event, as OpenAI does.
            yield _body(
                _EVENT_STREAM,
                {
                    "error": {
                        "message": error.details() or "the completion failed",
                        "type": "server_error",
                        "code": error.code().name.lower(),
                    }
                },
            )
            return
        finally:
            call.cancel()
        yield gateway_pb2.CreateChatCompletionResponse(
            http_body=httpbody_pb2.HttpBody(content_type=_EVENT_STREAM, data=b"data: [DONE]\n\n")
        )

    async def ListOpenAiModels(
        self, request: gateway_pb2.ListOpenAiModelsRequest, context: Context
    ) -> gateway_pb2.ListOpenAiModelsResponse:
        try:
            models = await self._router().ListModels(
                llm_pb2.ListModelsRequest(),
                metadata=forwarded_metadata(context),
                timeout=upstream_timeout(context, streaming=False),
            )
        except grpc.aio.AioRpcError as error:
            await relay_error(context, error, "llm-router")
        document = {
            "object": "list",
            "data": [
                {"id": model.alias, "object": "model", "created": 0, "owned_by": "switchboard"}
                for model in models.models
            ],
        }
        return gateway_pb2.ListOpenAiModelsResponse(
            http_body=httpbody_pb2.HttpBody(
                content_type=_JSON, data=json.dumps(document, separators=(",", ":")).encode()
            )
        )

"""The life of one generation request, shared by both provider dialects.

`serve_generation` does everything that is not wire format: it opens the ledger record,
authenticates and validates through the `Dialect`, applies the request's `Fault` (delays, error
status, reset, cut, stall), writes the JSON body or the SSE stream, and records how the exchange
ended. The dialects (`openai_api`, `anthropic_api`) only turn requests into a `Generation` and
replies into bytes.

Clients leaving early are detected through aiohttp's handler cancellation (the server runs with
``handler_cancellation=True``): when the peer closes the connection, the handler task is
cancelled wherever it is waiting (a delay, a stall, a full socket buffer); a write that finds the
transport already closing raises `ConnectionResetError`. Both are recorded as ``client_closed``,
unless the stand-in itself is tearing connections down (`StandinState.disruption`).
"""

from __future__ import annotations

import asyncio
import socket
import struct
from dataclasses import dataclass
from typing import Final, Protocol

from aiohttp import web

from switchboard_standins.faults import Fault
from switchboard_standins.replies import Reply, generate_reply
from switchboard_standins.request_ledger import RequestRecord
from switchboard_standins.state import STATE, StandinState

__all__ = [
    "ApiError",
    "Dialect",
    "Generation",
    "StreamRenderer",
    "serve_generation",
    "serve_model_list",
    "standin_headers",
]

STANDIN_ID_HEADER: Final = "x-standin-request-id"
_JSON: Final = "application/json"
_SSE: Final = "text/event-stream; charset=utf-8"
# SO_LINGER on with a zero timeout makes close() send a RST instead of a FIN.
_LINGER_RESET: Final = struct.pack("ii", 1, 0)


@dataclass(frozen=True, slots=True)
class ApiError:
    """An error answer in provider-neutral terms; each dialect renders it in its own shape."""

    status: int
    message: str
    type: str
    param: str | None = None
    code: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Generation:
    """A validated generation request.

    prompt         the text an echo reply repeats: the last user message
    prompt_tokens  the request's token count (words in the system prompt and every message)
    stream_usage   OpenAI's ``stream_options.include_usage``
    """

    model: str
    stream: bool
    prompt: str
    prompt_tokens: int
    max_tokens: int | None
    stop: tuple[str, ...] = ()
    stream_usage: bool = False


class StreamRenderer(Protocol):
    """The SSE bytes of one streamed reply: events before, per and after content deltas."""

    def preamble(self) -> bytes: ...

    def token(self, text: str) -> bytes: ...

    def epilogue(self) -> bytes: ...


class Dialect(Protocol):
    """One provider's wire format for generation requests."""

    # The header in which the provider returns its own request id (x-request-id, request-id).
    request_id_header: str

    def check_headers(self, request: web.BaseRequest, api_key: str) -> ApiError | None:
        """Authentication and required headers; None when the request may proceed."""
        ...

    def parse(self, body: bytes, models: tuple[str, ...] | None) -> Generation | ApiError:
        """Validate the JSON body the way the provider does."""
        ...

    def fault_error(self, status: int) -> ApiError:
        """The error the provider sends with an injected `status`."""
        ...

    def error_body(self, error: ApiError, request_id: str) -> bytes: ...

    def json_body(self, generation: Generation, reply: Reply, request_id: str) -> bytes: ...

    def stream_renderer(
        self, generation: Generation, reply: Reply, request_id: str
    ) -> StreamRenderer: ...

    def model_list_body(self, models: tuple[str, ...] | None) -> bytes:
        """The provider's model listing; None lists the dialect's usual models."""
        ...


def standin_headers(dialect: Dialect, request_id: str) -> dict[str, str]:
    """Headers on every provider response: the stand-in's id and the provider-style id."""
    return {STANDIN_ID_HEADER: request_id, dialect.request_id_header: f"req_{request_id}"}


async def serve_generation(request: web.Request, dialect: Dialect) -> web.StreamResponse:
    """Answer one generation request (the aiohttp handler body for both providers)."""
    return await _serve(request, dialect, generate=True)


async def serve_model_list(request: web.Request, dialect: Dialect) -> web.StreamResponse:
    """Answer a model listing: authenticated and recorded, never disturbed by faults."""
    return await _serve(request, dialect, generate=False)


async def _serve(request: web.Request, dialect: Dialect, *, generate: bool) -> web.StreamResponse:
    state = request.app[STATE]
    record = state.ledger.begin(request.path, request.headers)
    exchange = _Exchange(request, dialect, state, record)
    try:
        return await (exchange.generate() if generate else exchange.list_models())
    except asyncio.CancelledError:
        state.ledger.finish(record, state.disruption or "client_closed", status=exchange.status)
        raise
    except ConnectionResetError:
        # A write found the transport closing: the peer left between two of our awaits.
        state.ledger.finish(record, state.disruption or "client_closed", status=exchange.status)
        return exchange.response or web.Response()
    finally:
        # Still without an outcome here means a bug in the stand-in (aiohttp logs it and
        # answers 500); closing the record keeps `wait_idle` and the in-flight count honest.
        state.ledger.finish(record, "failed")


class _Exchange:
    """One request and its response, kept so that the error paths can hand it to aiohttp."""

    __slots__ = ("dialect", "record", "request", "response", "state")

    def __init__(
        self, request: web.Request, dialect: Dialect, state: StandinState, record: RequestRecord
    ) -> None:
        self.request = request
        self.dialect = dialect
        self.state = state
        self.record = record
        self.response: web.StreamResponse | None = None

    @property
    def status(self) -> int | None:
        """The status already sent, if the headers have gone out."""
        response = self.response
        return response.status if response is not None and response.prepared else None

    async def list_models(self) -> web.StreamResponse:
        problem = self.dialect.check_headers(self.request, self.state.api_key)
        if problem is not None:
            return await self._send_error(problem)
        body = self.dialect.model_list_body(self.state.models)
        headers = standin_headers(self.dialect, self.record.id)
        return await self._send(web.Response(body=body, content_type=_JSON, headers=headers))

    async def generate(self) -> web.StreamResponse:
        dialect, state = self.dialect, self.state
        problem = dialect.check_headers(self.request, state.api_key)
        if problem is not None:
            return await self._send_error(problem)
        parsed = dialect.parse(await self.request.read(), state.models)
        if isinstance(parsed, ApiError):
            return await self._send_error(parsed)
        self.record.model = parsed.model
        self.record.stream = parsed.stream

        fault = state.injector.next_fault()
        state.ledger.note_fault(self.record, fault.name)
        await _pause(fault.latency_ms)
        if fault.reset:
            state.ledger.finish(self.record, "reset")
            _reset_connection(self.request)
            # Never written: aiohttp's attempt fails on the closed transport, which it expects.
            return web.Response()
        if fault.status is not None:
            error = dialect.fault_error(fault.status)
            return await self._send_error(error, retry_after_s=fault.retry_after_s)

        reply = generate_reply(
            state.reply, parsed.prompt, max_tokens=parsed.max_tokens, stop=parsed.stop
        )
        if parsed.stream:
            return await self._stream(parsed, reply, fault)
        return await self._json(parsed, reply, fault)

    async def _send_error(
        self, error: ApiError, *, retry_after_s: float | None = None
    ) -> web.StreamResponse:
        headers = standin_headers(self.dialect, self.record.id)
        if retry_after_s is not None:
            headers["Retry-After"] = _format_seconds(retry_after_s)
        body = self.dialect.error_body(error, self.record.id)
        return await self._send(
            web.Response(body=body, status=error.status, content_type=_JSON, headers=headers)
        )

    async def _send(self, response: web.Response) -> web.StreamResponse:
        # Written here rather than by aiohttp after we return, so that "completed" is recorded
        # only once the bytes are in the transport.
        self.response = response
        await response.prepare(self.request)
        await response.write_eof()
        self.state.ledger.finish(self.record, "completed", status=response.status)
        return response

    async def _json(self, generation: Generation, reply: Reply, fault: Fault) -> web.StreamResponse:
        # A non-streaming reply takes as long as the stream of the same reply would.
        tokens = len(reply.tokens)
        await _pause(fault.first_token_ms + fault.inter_token_ms * max(tokens - 1, 0))
        body = self.dialect.json_body(generation, reply, self.record.id)
        headers = standin_headers(self.dialect, self.record.id)
        if fault.cut_after_tokens is None and fault.stall_after_tokens is None:
            return await self._send(web.Response(body=body, content_type=_JSON, headers=headers))

        # Broken mid-body: the headers promise the whole body, half of it arrives.
        response = self.response = web.StreamResponse(headers=headers)
        response.content_type = _JSON
        response.content_length = len(body)
        await response.prepare(self.request)
        await response.write(body[: len(body) // 2])
        return await self._break(response, cut=fault.cut_after_tokens is not None)

    async def _stream(
        self, generation: Generation, reply: Reply, fault: Fault
    ) -> web.StreamResponse:
        renderer = self.dialect.stream_renderer(generation, reply, self.record.id)
        headers = standin_headers(self.dialect, self.record.id)
        headers["Cache-Control"] = "no-cache"
        response = self.response = web.StreamResponse(headers=headers)
        response.content_type = _SSE
        await response.prepare(self.request)

        tokens = reply.tokens
        limit = fault.cut_after_tokens
        if limit is None:
            limit = fault.stall_after_tokens
        sent = tokens if limit is None else tokens[:limit]

        if not (fault.first_token_ms or fault.inter_token_ms or limit is not None):
            # Fast path (benchmarks against a zero-latency stand-in): one write for everything.
            await response.write_eof(
                b"".join((renderer.preamble(), *map(renderer.token, tokens), renderer.epilogue()))
            )
            self.state.ledger.finish(self.record, "completed", status=response.status)
            return response

        await response.write(renderer.preamble())
        await _pause(fault.first_token_ms)
        if fault.inter_token_ms:
            for index, token in enumerate(sent):
                if index:
                    await _pause(fault.inter_token_ms)
                await response.write(renderer.token(token))
        elif sent:
            await response.write(b"".join(map(renderer.token, sent)))
        if limit is not None:
            return await self._break(response, cut=fault.cut_after_tokens is not None)
        await response.write_eof(renderer.epilogue())
        self.state.ledger.finish(self.record, "completed", status=response.status)
        return response

    async def _break(self, response: web.StreamResponse, *, cut: bool) -> web.StreamResponse:
        """End a response that has started: close the connection (cut) or go silent (stall)."""
        if cut:
            self.state.ledger.finish(self.record, "cut", status=response.status)
            # A graceful close: the bytes already written arrive, then EOF in mid-body.
            transport = self.request.transport
            if transport is not None:
                transport.close()
            return response
        # Stalled until the client gives up: its disconnect cancels this wait.
        await asyncio.get_running_loop().create_future()
        raise AssertionError("unreachable: a stall only ends by cancellation")


async def _pause(ms: float) -> None:
    if ms > 0:
        await asyncio.sleep(ms / 1000)


def _reset_connection(request: web.BaseRequest) -> None:
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    transport.abort()


def _format_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"

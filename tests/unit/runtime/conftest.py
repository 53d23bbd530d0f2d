"""Fixtures for the runtime library's unit tests: a real in-process gRPC server on a free port."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import grpc
import grpc.aio
import pytest

ServeFn = Callable[..., AbstractAsyncContextManager[grpc.aio.Channel]]


@asynccontextmanager
async def _serve(
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]],
    *,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    service: str = "test.v1.TestService",
) -> AsyncIterator[grpc.aio.Channel]:
    server = grpc.aio.server(interceptors=list(interceptors))
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(service, handlers)])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel
    finally:
        await server.stop(None)


@pytest.fixture
def serve() -> ServeFn:
    """`async with serve({"Method": handler}) as channel:` runs a server for the block."""
    return _serve


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put the root logger back the way it was after a test reconfigures it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)

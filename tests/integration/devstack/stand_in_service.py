"""A stand-in for a Switchboard service in supervisor tests: grpc.health.v1 on GRPC_PORT.

Run as a script by the stack, with the same environment a real service gets. Behaviour:

- serves health (SERVING for "") on GRPC_HOST:GRPC_PORT and prints one JSON log line;
- STAND_IN_ENV_FILE: once serving, writes its environment there as JSON (atomically);
- STAND_IN_FAIL_AT_START=1: prints an error and exits 2 before serving;
- SIGUSR1: prints "boom" to stderr and exits 3, a crash;
- SIGTERM: NOT_SERVING, drains, exits 0, as a real service does.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

CRASH_CODE = 3


def _write_environment(path: Path) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(dict(os.environ)))
    partial.rename(path)


async def serve() -> int:
    name = os.environ.get("SERVICE_NAME", "stand-in")
    if os.environ.get("STAND_IN_FAIL_AT_START") == "1":
        print(f"{name}: cannot start: configuration is missing on purpose", file=sys.stderr)
        return 2
    server = grpc.aio.server()
    servicer = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_insecure_port(f"{os.environ['GRPC_HOST']}:{os.environ['GRPC_PORT']}")
    await server.start()
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    print(json.dumps({"level": "info", "service": name, "msg": "serving"}), flush=True)
    if env_file := os.environ.get("STAND_IN_ENV_FILE"):
        await asyncio.to_thread(_write_environment, Path(env_file))

    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[int] = loop.create_future()

    def finish(code: int) -> None:
        if not outcome.done():
            outcome.set_result(code)

    loop.add_signal_handler(signal.SIGTERM, finish, 0)
    loop.add_signal_handler(signal.SIGUSR1, finish, CRASH_CODE)
    code = await outcome
    if code == CRASH_CODE:
        print(f"{name}: boom, failing on purpose", file=sys.stderr, flush=True)
        await server.stop(None)
        return code
    await servicer.enter_graceful_shutdown()
    await server.stop(grace=2)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(serve()))

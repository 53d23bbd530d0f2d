"""Run one stand-in as a process: ``python -m switchboard_standins openai|anthropic [options]``.

Once listening it prints two lines on stdout and flushes: the base URL to give the provider's
SDK, then the admin API's URL (on its own port, which stays up while the provider port is down).
It exits with status 0 on SIGTERM or SIGINT, after dropping open connections.

    python -m switchboard_standins openai --port 8100 --api-key sk-local --latency-ms 20
    python -m switchboard_standins anthropic --profile-json '{"error_rates": {"529": 0.05}}'

``--profile-json`` takes a FaultProfile JSON object, inline or as the path of a file holding one;
``--latency-ms`` overrides the profile's latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from switchboard_standins.faults import FaultProfile
from switchboard_standins.replies import ReplyPolicy
from switchboard_standins.server import ProviderKind, StandinServer


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        profile = _load_profile(args.profile_json)
        if args.latency_ms is not None:
            profile = replace(profile, latency_ms=args.latency_ms)
        reply = ReplyPolicy(canned=args.canned_reply, filler_tokens=args.filler_tokens)
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    server = StandinServer(
        args.kind,
        api_key=args.api_key,
        host=args.host,
        port=args.port,
        admin_port=args.admin_port,
        profile=profile,
        reply=reply,
        models=args.models.split(",") if args.models else None,
    )
    try:
        asyncio.run(_serve(server))
    except OSError as exc:  # typically the port is taken
        print(f"switchboard_standins: {exc}", file=sys.stderr)
        return 1
    return 0


async def _serve(server: StandinServer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        print(server.base_url, flush=True)
        print(server.admin_url, flush=True)
        await stop.wait()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m switchboard_standins",
        description="A local stand-in for an LLM provider API, with fault injection.",
    )
    kinds: tuple[ProviderKind, ...] = ("openai", "anthropic")
    parser.add_argument("kind", choices=kinds, help="which provider's API to speak")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument(
        "--admin-port", type=int, default=0, help="admin listener port; 0 picks a free port"
    )
    parser.add_argument("--api-key", default="sk-standin", help="the only key accepted")
    parser.add_argument("--latency-ms", type=float, help="delay before every response")
    parser.add_argument("--profile-json", help="a FaultProfile as JSON, or a file holding one")
    parser.add_argument("--canned-reply", help='reply with this text instead of "Echo: ..."')
    parser.add_argument("--filler-tokens", type=int, default=0, help="filler words per reply")
    parser.add_argument("--models", help="comma-separated models served (default: any)")
    return parser


def _load_profile(source: str | None) -> FaultProfile:
    if source is None:
        return FaultProfile()
    text = source if source.lstrip().startswith("{") else Path(source).read_text()
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"--profile-json is not valid JSON: {exc}") from None
    return FaultProfile.from_json(data)


if __name__ == "__main__":
    sys.exit(main())

"""LLM router benchmark: overhead, streaming, tail latency with hedging, failover.

Everything runs on 127.0.0.1, one process per router (`python -m llm_router`), stand-ins as
processes (`python -m switchboard_standins`), identity in this process (it only issues the
token and the keys every call is verified with), and a LiteLLM proxy (`litellm[proxy]`,
installed into bench/.venvs/litellm on first use) as the peer to beat. Prints a table, then
one JSON object on its last line (`make bench` collects it).

    overhead   zero-latency stand-in: direct SDK vs router vs LiteLLM, sequential and at
               concurrency 16 and 64: p50/p99 added latency, throughput, CPU per request
    streaming  16 concurrent streams: time to first token and total, direct vs router vs LiteLLM
    tail       5% of calls take 20x the median: p50/p99/p99.9 with hedging off and on, and the
               extra upstream requests hedging cost
    failover   two deployments under steady load, one killed mid-run: errors the client saw,
               attempts that still went to the dead one, p99 added

Every load loop is bounded in calls and in time. Options: --quick (smaller counts),
--skip-litellm.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import grpc
import httpx
import httpx2
import openai
import psutil
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from identity.main import build_app as build_identity_app
from identity.settings import IdentitySettings
from switchboard.identity.v1 import identity_pb2, identity_pb2_grpc
from switchboard.llm.v1 import llm_pb2, llm_pb2_grpc
from switchboard_devstack.nats_engine import NatsEngine
from switchboard_devstack.postgres_engine import PostgresEngine, ensure_runtime_dir
from switchboard_devstack.processes import free_port
from switchboard_devstack.redis_engine import RedisEngine

HERE: Final = Path(__file__).resolve().parent
LITELLM_VENV: Final = HERE / ".venvs" / "litellm"
KEY: Final = "sk-bench-standin"
SERVICE_SECRET: Final = "bench-service-secret-0123456789"
#: LiteLLM's proxy refuses to start without a master key; clients send it like an API key.
LITELLM_MASTER_KEY: Final = f"sk-{secrets.token_hex(32)}"
MODEL: Final = "gpt-bench"
PROMPT: Final = [{"role": "user", "content": "hello there, how are you"}]
STREAM_PROFILE: Final = {"first_token_ms": 20, "inter_token_ms": 5}
STREAM_FILLER: Final = 50
TAIL_PROFILE: Final = {"latency_ms": 20, "tail_probability": 0.05, "tail_factor": 20}
FAILOVER_PROFILE: Final = {"latency_ms": 10}


@dataclass(frozen=True)
class Counts:
    sequential: int
    concurrent: int
    streams_per_worker: int
    tail_calls: int
    failover_rate: int
    failover_seconds: float
    kill_at_s: float
    phase_limit_s: float


FULL: Final = Counts(1000, 3000, 10, 2000, 50, 20.0, 6.0, 25.0)
QUICK: Final = Counts(200, 600, 3, 600, 30, 8.0, 3.0, 10.0)


def pct(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- processes ---------------------------------------------------------------------------


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        """User + system CPU of the process and its children so far."""
        try:
            proc = psutil.Process(self.pid)
            total = 0.0
            for member in [proc, *proc.children(recursive=True)]:
                times = member.cpu_times()
                total += times.user + times.system
            return total
        except psutil.Error:
            return 0.0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


@dataclass
class Standin:
    child: Child
    kind: str
    port: int
    admin_url: str

    @property
    def base_url(self) -> str:
        root = f"http://127.0.0.1:{self.port}"
        return f"{root}/v1" if self.kind == "openai" else root


@dataclass
class Bench:
    work: Path
    counts: Counts
    children: list[Child] = field(default_factory=list)

    def spawn(self, name: str, args: list[str], *, env: dict[str, str] | None = None) -> Child:
        out = (self.work / f"{name}.log").open("wb")
        process = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env or os.environ.copy(),
            start_new_session=True,
        )
        child = Child(name, process)
        self.children.append(child)
        return child

    async def standin(
        self, name: str, profile: dict[str, Any], *, port: int | None = None, filler: int = 0
    ) -> Standin:
        port = port or free_port()
        admin = free_port()
        args = [
            sys.executable,
            "-m",
            "switchboard_standins",
            "openai",
            "--port",
            str(port),
            "--admin-port",
            str(admin),
            "--api-key",
            KEY,
            "--profile-json",
            json.dumps(profile),
            "--filler-tokens",
            str(filler),
        ]
        child = self.spawn(name, args)
        await wait_http(f"http://127.0.0.1:{admin}/_standin/stats?recent=0", child)
        return Standin(child, "openai", port, f"http://127.0.0.1:{admin}/_standin")

    def stop_all(self) -> None:
        for child in reversed(self.children):
            child.stop()


async def wait_http(url: str, child: Child, *, within_s: float = 60.0) -> None:
    deadline = time.monotonic() + within_s
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if child.process.poll() is not None:
                raise RuntimeError(f"{child.name} exited with {child.process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url, timeout=1.0)).status_code < 500:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{child.name} did not answer at {url}")


async def wait_grpc(port: int, child: Child, *, within_s: float = 60.0) -> None:
    deadline = time.monotonic() + within_s
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if child.process.poll() is not None:
                raise RuntimeError(f"{child.name} exited with {child.process.returncode}")
            with contextlib.suppress(grpc.aio.AioRpcError):
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{child.name} did not become SERVING")


# -- engines and identity ----------------------------------------------------------------


@dataclass
class Identity:
    address: str
    user_token: str
    operator_token: str


@contextlib.asynccontextmanager
async def engines_and_identity(work: Path) -> AsyncIterator[tuple[str, Identity]]:
    ensure_runtime_dir(work / "run")
    with (
        PostgresEngine(work / "postgres", runtime_dir=work / "run") as postgres,
        NatsEngine(work / "nats", port=free_port(), log_path=work / "nats.log") as nats,
        RedisEngine(
            work / "redis", port=free_port(), unix_socket=False, log_path=work / "redis.log"
        ) as redis,
    ):
        settings = IdentitySettings(
            grpc_host="127.0.0.1",
            grpc_port=0,
            metrics_port=0,
            log_level="WARNING",
            database_url=postgres.create_database("bench_identity"),
            nats_url=nats.url,
            signing_key_encryption_key="A" * 43 + "=",
            service_client_secrets=(f"conversation={SERVICE_SECRET}",),
            access_token_ttl_seconds=3600,
            service_token_ttl_seconds=3600,
        )
        app = build_identity_app(settings)
        await app.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{app.bound_port}") as channel:
                stub = identity_pb2_grpc.IdentityServiceStub(channel)
                signed_up = await stub.SignUp(
                    identity_pb2.SignUpRequest(
                        tenant_name="Bench",
                        tenant_slug=f"bench-{uuid.uuid4().hex[:8]}",
                        email="bench@bench.test",
                        password="a long enough bench password",
                        display_name="Bench",
                    )
                )
                operator = await stub.IssueServiceToken(
                    identity_pb2.IssueServiceTokenRequest(
                        service_name="conversation",
                        client_secret=SERVICE_SECRET,
                        scopes=["llm:operate"],
                    )
                )
            yield (
                redis.url,
                Identity(
                    f"127.0.0.1:{app.bound_port}",
                    signed_up.tokens.access_token,
                    operator.access_token,
                ),
            )
        finally:
            await app.stop()


# -- the router and LiteLLM --------------------------------------------------------------


@dataclass
class RouterProcess:
    child: Child
    port: int
    channel: grpc.aio.Channel
    stub: llm_pb2_grpc.LlmServiceAsyncStub


async def start_router(
    bench: Bench, name: str, config: dict[str, Any], redis_url: str, identity: Identity
) -> RouterProcess:
    path = bench.work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    env = os.environ | {
        "GRPC_HOST": "127.0.0.1",
        "GRPC_PORT": str(port),
        "METRICS_PORT": "0",
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": f"bench-{name}-{uuid.uuid4().hex[:6]}",
        "IDENTITY_ADDR": identity.address,
        "SERVICE_CLIENT_ID": "conversation",
        "SERVICE_CLIENT_SECRET": SERVICE_SECRET,
        "LLM_ROUTER_CONFIG": str(path),
        "BENCH_KEY": KEY,
    }
    child = bench.spawn(name, [sys.executable, "-m", "llm_router"], env=env)
    await wait_grpc(port, child)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stub: llm_pb2_grpc.LlmServiceAsyncStub = llm_pb2_grpc.LlmServiceStub(channel)
    return RouterProcess(child, port, channel, stub)


def deployment(standin: Standin, deployment_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": deployment_id,
        "provider": "openai",
        "model": MODEL,
        "base_url": standin.base_url,
        "api_key_env": "BENCH_KEY",
    } | extra


async def ensure_litellm(work: Path) -> Path | str:
    """The `litellm` executable, installed on first use; or why it is unavailable."""
    executable = LITELLM_VENV / "bin" / "litellm"
    if executable.exists():
        return executable
    log("installing litellm[proxy] into bench/.venvs/litellm (first run only)...")

    def install() -> subprocess.CompletedProcess[str]:
        if not (LITELLM_VENV / "bin" / "pip").exists():
            subprocess.run(
                ["python3", "-m", "venv", str(LITELLM_VENV)], check=True, capture_output=True
            )
        return subprocess.run(
            [
                str(LITELLM_VENV / "bin" / "pip"),
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "litellm[proxy]",
            ],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )

    try:
        done = await asyncio.to_thread(install)
    except (OSError, subprocess.SubprocessError) as error:
        return f"unavailable: {type(error).__name__}: {error}"
    if done.returncode != 0 or not executable.exists():
        last = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
        return f"unavailable: pip install litellm[proxy] failed: {last[:200]}"
    return executable


async def start_litellm(
    bench: Bench, executable: Path, model_list: list[dict[str, Any]]
) -> tuple[Child, str]:
    path = bench.work / "litellm.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "model_list": model_list,
                "router_settings": {"num_retries": 2},
                "litellm_settings": {"telemetry": False},
            }
        )
    )
    port = free_port()
    env = os.environ | {
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_TELEMETRY": "False",
        "LITELLM_LOG": "ERROR",
        "NO_DOCS": "True",
        "LITELLM_MASTER_KEY": LITELLM_MASTER_KEY,
    }
    child = bench.spawn(
        "litellm",
        [
            str(executable),
            "--config",
            str(path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--num_workers",
            "1",
        ],
        env=env,
    )
    await wait_http(f"http://127.0.0.1:{port}/health/liveliness", child, within_s=180)
    return child, f"http://127.0.0.1:{port}/v1"


def litellm_model(name: str, standin: Standin) -> dict[str, Any]:
    return {
        "model_name": name,
        "litellm_params": {
            "model": f"openai/{MODEL}",
            "api_base": standin.base_url,
            "api_key": KEY,
        },
    }


# -- load --------------------------------------------------------------------------------


@dataclass
class Load:
    latencies: list[float]
    errors: int
    elapsed: float

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0


async def run_load(
    call: Callable[[], Awaitable[object]], *, total: int, concurrency: int, limit_s: float
) -> Load:
    latencies: list[float] = []
    errors = 0
    tickets = iter(range(total))
    stop_at = time.perf_counter() + limit_s

    async def worker() -> None:
        nonlocal errors
        for _ in tickets:
            if time.perf_counter() > stop_at:
                return
            started = time.perf_counter()
            try:
                await call()
            except Exception:
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Load(latencies, errors, time.perf_counter() - started)


def grpc_request(alias: str) -> llm_pb2.CompleteRequest:
    return llm_pb2.CompleteRequest(
        params=llm_pb2.CompletionParams(
            model=alias,
            messages=[
                llm_pb2.ChatMessage(role=llm_pb2.CHAT_ROLE_USER, content=PROMPT[0]["content"])
            ],
        )
    )


def sdk_client(base_url: str, *, api_key: str = KEY) -> openai.AsyncOpenAI:
    """The direct-call client: the SDK as an application would use it (its defaults)."""
    return openai.AsyncOpenAI(
        base_url=base_url,
        api_key=api_key,
        max_retries=0,
        timeout=30.0,
        http_client=openai.DefaultAsyncHttpxClient(
            limits=httpx2.Limits(max_connections=256, max_keepalive_connections=256)
        ),
    )


# -- phases ------------------------------------------------------------------------------


async def overhead(
    bench: Bench,
    zero: Standin,
    router: RouterProcess,
    user: tuple[tuple[str, str], ...],
    litellm: tuple[Child, str] | None,
) -> dict[str, Any]:
    counts = bench.counts
    direct_client = sdk_client(zero.base_url)
    request = grpc_request("bench")

    async def direct() -> object:
        return await direct_client.chat.completions.create(model=MODEL, messages=PROMPT)  # type: ignore[arg-type]

    async def routed() -> object:
        return await router.stub.Complete(request, metadata=user, timeout=30)

    targets: dict[str, tuple[Callable[[], Awaitable[object]], Child | None]] = {
        "direct": (direct, None),
        "router": (routed, router.child),
    }
    if litellm is not None:
        litellm_client = sdk_client(litellm[1], api_key=LITELLM_MASTER_KEY)

        async def proxied() -> object:
            return await litellm_client.chat.completions.create(model="bench", messages=PROMPT)  # type: ignore[arg-type]

        targets["litellm"] = (proxied, litellm[0])

    results: dict[str, Any] = {}
    for name, (call, process) in targets.items():
        await run_load(call, total=100, concurrency=4, limit_s=10)  # warm up
        per_level: dict[str, Any] = {}
        for level, concurrency, total in (
            ("sequential", 1, counts.sequential),
            ("c16", 16, counts.concurrent),
            ("c64", 64, counts.concurrent),
        ):
            if name == "litellm":
                total = min(total, counts.concurrent // 3 if concurrency > 1 else 300)
            cpu_before = process.cpu_seconds() if process is not None else 0.0
            load = await run_load(
                call, total=total, concurrency=concurrency, limit_s=counts.phase_limit_s
            )
            cpu = (process.cpu_seconds() - cpu_before) if process is not None else None
            done = max(1, len(load.latencies) + load.errors)
            per_level[level] = {
                "calls": len(load.latencies),
                "errors": load.errors,
                "p50_ms": ms(pct(load.latencies, 50)),
                "p99_ms": ms(pct(load.latencies, 99)),
                "throughput_rps": round(load.throughput, 1),
                "cpu_ms_per_request": None if cpu is None else round(cpu / done * 1000, 3),
            }
            log(f"overhead {name} {level}: {per_level[level]}")
        results[name] = per_level
    await direct_client.close()
    for proxy in ("router", "litellm"):
        if proxy not in results:
            continue
        for level in ("sequential", "c16", "c64"):
            entry = results[proxy][level]
            base = results["direct"][level]
            entry["p50_added_ms"] = _minus(entry["p50_ms"], base["p50_ms"])
            entry["p99_added_ms"] = _minus(entry["p99_ms"], base["p99_ms"])
    return results


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 2)


async def streaming(
    bench: Bench,
    stream_standin: Standin,
    router: RouterProcess,
    user: tuple[tuple[str, str], ...],
    litellm: tuple[Child, str] | None,
) -> dict[str, Any]:
    concurrency = 16
    per_worker = bench.counts.streams_per_worker

    async def sdk_stream(client: openai.AsyncOpenAI, model: str) -> tuple[float, float]:
        started = time.perf_counter()
        first = None
        stream: Any = await client.chat.completions.create(
            model=model,
            messages=PROMPT,  # type: ignore[arg-type]
            stream=True,
        )
        async with stream:
            async for chunk in stream:
                if first is None and chunk.choices and chunk.choices[0].delta.content:
                    first = time.perf_counter() - started
        return first or float("nan"), time.perf_counter() - started

    request = llm_pb2.StreamCompleteRequest(params=grpc_request("stream").params)

    async def grpc_stream() -> tuple[float, float]:
        started = time.perf_counter()
        first = None
        call: Any = router.stub.StreamComplete(request, metadata=user, timeout=30)
        async for message in call:
            if first is None and message.WhichOneof("event") == "delta":
                first = time.perf_counter() - started
        return first or float("nan"), time.perf_counter() - started

    direct_client = sdk_client(stream_standin.base_url)
    targets: dict[str, Callable[[], Awaitable[tuple[float, float]]]] = {
        "direct": lambda: sdk_stream(direct_client, MODEL),
        "router": grpc_stream,
    }
    if litellm is not None:
        litellm_client = sdk_client(litellm[1], api_key=LITELLM_MASTER_KEY)
        targets["litellm"] = lambda: sdk_stream(litellm_client, "stream")
    results: dict[str, Any] = {}
    for name, one in targets.items():
        await asyncio.gather(*(one() for _ in range(concurrency)))  # warm up
        samples: list[tuple[float, float]] = []
        errors = 0

        async def worker(
            one: Callable[[], Awaitable[tuple[float, float]]] = one,
            samples: list[tuple[float, float]] = samples,
        ) -> None:
            nonlocal errors
            for _ in range(per_worker):
                try:
                    samples.append(await one())
                except Exception:
                    errors += 1

        async with asyncio.timeout(bench.counts.phase_limit_s * 4):
            await asyncio.gather(*(worker() for _ in range(concurrency)))
        ttft = [s[0] for s in samples]
        total = [s[1] for s in samples]
        results[name] = {
            "streams": len(samples),
            "errors": errors,
            "ttft_p50_ms": ms(pct(ttft, 50)),
            "ttft_p99_ms": ms(pct(ttft, 99)),
            "total_p50_ms": ms(pct(total, 50)),
            "total_p99_ms": ms(pct(total, 99)),
        }
        log(f"streaming {name}: {results[name]}")
    for proxy in ("router", "litellm"):
        if proxy in results:
            results[proxy]["ttft_p50_added_ms"] = _minus(
                results[proxy]["ttft_p50_ms"], results["direct"]["ttft_p50_ms"]
            )
    await direct_client.close()
    return results


async def standin_received(standins: list[Standin]) -> int:
    total = 0
    async with httpx.AsyncClient() as client:
        for standin in standins:
            stats = (await client.get(f"{standin.admin_url}/stats?recent=0")).json()
            total += sum(stats["received"].values())
    return total


async def reset_standins(standins: list[Standin]) -> None:
    async with httpx.AsyncClient() as client:
        for standin in standins:
            await client.post(f"{standin.admin_url}/stats/reset")


async def tail(
    bench: Bench,
    tails: list[Standin],
    routers: dict[str, RouterProcess],
    user: tuple[tuple[str, str], ...],
) -> dict[str, Any]:
    request = grpc_request("tail")
    results: dict[str, Any] = {}
    for name, router in routers.items():

        async def call(router: RouterProcess = router) -> object:
            return await router.stub.Complete(request, metadata=user, timeout=30)

        await run_load(call, total=200, concurrency=4, limit_s=20)  # warm up: latency stats
        await reset_standins(tails)
        load = await run_load(
            call,
            total=bench.counts.tail_calls,
            concurrency=4,
            limit_s=bench.counts.phase_limit_s * 3,
        )
        upstream = await standin_received(tails)
        calls = len(load.latencies) + load.errors
        results[name] = {
            "calls": calls,
            "errors": load.errors,
            "p50_ms": ms(pct(load.latencies, 50)),
            "p99_ms": ms(pct(load.latencies, 99)),
            "p999_ms": ms(pct(load.latencies, 99.9)),
            "upstream_requests": upstream,
            "extra_upstream_pct": round((upstream - calls) / max(1, calls) * 100, 2),
        }
        log(f"tail {name}: {results[name]}")
    off, on = results.get("hedging_off"), results.get("hedging_on")
    if off and on and on["p99_ms"]:
        results["p99_improvement_x"] = round(off["p99_ms"] / on["p99_ms"], 1)
    return results


async def failover(
    bench: Bench,
    pair: list[Standin],
    call: Callable[[], Awaitable[Any]],
    *,
    dead_id: str | None,
    status: Callable[[], Awaitable[bool]] | None,
) -> dict[str, Any]:
    """Open-loop load at a steady rate; kill `pair[0]` mid-run."""
    counts = bench.counts
    rate, duration = counts.failover_rate, counts.failover_seconds
    started = time.perf_counter()
    kill_at = started + counts.kill_at_s
    records: list[tuple[float, float, bool, Any]] = []
    tasks: list[asyncio.Task[None]] = []
    opened_after: float | None = None

    async def one(at: float) -> None:
        t0 = time.perf_counter()
        try:
            reply = await call()
        except Exception:
            records.append((at, time.perf_counter() - t0, False, None))
            return
        records.append((at, time.perf_counter() - t0, True, reply))

    killed = False
    for index in range(int(rate * duration)):
        at = started + index / rate
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        if not killed and time.perf_counter() >= kill_at:
            pair[0].child.process.kill()
            killed = True
        tasks.append(asyncio.create_task(one(at - started)))
        watching = killed and status is not None and opened_after is None and index % 5 == 0
        if watching and status is not None and await status():
            opened_after = time.perf_counter() - kill_at
    async with asyncio.timeout(60):
        await asyncio.gather(*tasks)
    kill_s = counts.kill_at_s
    before = [r[1] for r in records if r[0] < kill_s and r[2]]
    after = [r[1] for r in records if r[0] >= kill_s and r[2]]
    result: dict[str, Any] = {
        "rate_rps": rate,
        "duration_s": duration,
        "calls": len(records),
        "client_errors": sum(1 for r in records if not r[2]),
        "p99_before_kill_ms": ms(pct(before, 99)),
        "p99_after_kill_ms": ms(pct(after, 99)),
        "p99_added_ms": _minus(ms(pct(after, 99)), ms(pct(before, 99))),
    }
    if dead_id is not None:
        dead = [
            r[0] - kill_s
            for r in records
            if r[0] >= kill_s and r[3] is not None
            for attempt in r[3].attempts
            if attempt.deployment_id == dead_id
        ]
        result |= {
            "attempts_to_dead": len(dead),
            "attempts_to_dead_first_2s": sum(1 for t in dead if t < 2),
            "last_attempt_to_dead_after_s": round(max(dead), 2) if dead else None,
            "breaker_open_after_s": None if opened_after is None else round(opened_after, 2),
        }
    return result


# -- main --------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    counts = QUICK if args.quick else FULL
    work = Path(tempfile.mkdtemp(prefix="router-bench-"))
    bench = Bench(work, counts)
    result: dict[str, Any] = {"benchmark": "router"}
    litellm_state: Path | str = "unavailable: skipped (--skip-litellm)"
    try:
        if not args.skip_litellm:
            litellm_state = await ensure_litellm(work)
        async with engines_and_identity(work) as (redis_url, identity):
            user = (("authorization", f"Bearer {identity.user_token}"),)
            operator = (("authorization", f"Bearer {identity.operator_token}"),)
            zero = await bench.standin("standin-zero", {})
            stream_standin = await bench.standin(
                "standin-stream", STREAM_PROFILE, filler=STREAM_FILLER
            )
            tails = [
                await bench.standin(f"standin-tail-{n}", TAIL_PROFILE | {"seed": n}) for n in (1, 2)
            ]
            pair = [await bench.standin(f"standin-pair-{n}", FAILOVER_PROFILE) for n in (1, 2)]
            hedging = {"enabled": True, "min_delay_ms": 40, "max_delay_ms": 200}
            models = {
                "bench": {"deployments": [deployment(zero, "zero")]},
                "stream": {"deployments": [deployment(stream_standin, "stream")]},
                "tail": {
                    "deployments": [deployment(tails[0], "tail-1"), deployment(tails[1], "tail-2")]
                },
                "failover": {
                    "deployments": [deployment(pair[0], "pair-1"), deployment(pair[1], "pair-2")]
                },
            }
            main_config = {"router": {"hedging": hedging}, "models": models}
            router = await start_router(bench, "router", main_config, redis_url, identity)
            no_hedge = await start_router(
                bench,
                "router-nohedge",
                {"router": {"hedging": {"enabled": False}}, "models": {"tail": models["tail"]}},
                redis_url,
                identity,
            )
            litellm: tuple[Child, str] | None = None
            if isinstance(litellm_state, Path):
                try:
                    litellm = await start_litellm(
                        bench,
                        litellm_state,
                        [
                            litellm_model("bench", zero),
                            litellm_model("stream", stream_standin),
                            litellm_model("failover", pair[0]),
                            litellm_model("failover", pair[1]),
                        ],
                    )
                except RuntimeError as error:
                    litellm_state = f"unavailable: {error}"
            result["litellm"] = "measured" if litellm is not None else str(litellm_state)
            log(f"litellm: {result['litellm']}")

            result["overhead"] = await overhead(bench, zero, router, user, litellm)
            result["streaming"] = await streaming(bench, stream_standin, router, user, litellm)
            result["tail"] = await tail(
                bench, tails, {"hedging_off": no_hedge, "hedging_on": router}, user
            )

            failover_request = grpc_request("failover")

            async def routed_failover() -> Any:
                return await router.stub.Complete(failover_request, metadata=user, timeout=30)

            async def breaker_open() -> bool:
                reply = await router.stub.GetRouterStatus(
                    llm_pb2.GetRouterStatusRequest(), metadata=operator, timeout=5
                )
                return any(
                    d.deployment_id == "pair-1" and d.breaker_state == llm_pb2.BREAKER_STATE_OPEN
                    for d in reply.deployments
                )

            result["failover"] = {
                "router": await failover(
                    bench, pair, routed_failover, dead_id="pair-1", status=breaker_open
                )
            }
            log(f"failover router: {result['failover']['router']}")
            if litellm is not None:
                # The killed stand-in comes back on its port; LiteLLM gets the same treatment.
                pair[0] = await bench.standin(
                    "standin-pair-1b", FAILOVER_PROFILE, port=pair[0].port
                )
                litellm_client = sdk_client(litellm[1], api_key=LITELLM_MASTER_KEY)

                async def proxied_failover() -> Any:
                    return await litellm_client.chat.completions.create(
                        model="failover",
                        messages=PROMPT,  # type: ignore[arg-type]
                    )

                await run_load(proxied_failover, total=50, concurrency=4, limit_s=10)
                result["failover"]["litellm"] = await failover(
                    bench, pair, proxied_failover, dead_id=None, status=None
                )
                log(f"failover litellm: {result['failover']['litellm']}")
            await router.channel.close()
            await no_hedge.channel.close()
    finally:
        bench.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    result["goals"] = {
        "overhead": "router p50 added <= 2 ms sequential; c16/c64 throughput >= 5x LiteLLM; "
        "router CPU <= 2 ms per request",
        "streaming": "router TTFT added <= 10 ms at 16 concurrent streams",
        "tail": "p99 with hedging >= 5x lower, <= 10% extra upstream requests",
        "failover": "zero client-visible errors",
    }
    return result


def print_table(result: dict[str, Any]) -> None:
    print("LLM router benchmark (127.0.0.1, one process per router)")
    print(f"  LiteLLM: {result.get('litellm')}")
    overhead = result.get("overhead", {})
    header = "p50 ms   p99 ms   +p50   +p99     rps  cpu ms/req"
    print(f"\n  overhead (zero-latency stand-in)          {header}")
    for name, levels in overhead.items():
        for level, row in levels.items():
            print(
                f"    {name:<8} {level:<12} {row['p50_ms']!s:>22} {row['p99_ms']!s:>8}"
                f" {row.get('p50_added_ms', '')!s:>6} {row.get('p99_added_ms', '')!s:>6}"
                f" {row['throughput_rps']!s:>7} {row['cpu_ms_per_request']!s:>11}"
            )
    print("\n  streaming (16 concurrent)   ttft p50  ttft p99  total p50  total p99")
    for name, row in result.get("streaming", {}).items():
        print(
            f"    {name:<24} {row['ttft_p50_ms']!s:>9} {row['ttft_p99_ms']!s:>9}"
            f" {row['total_p50_ms']!s:>10} {row['total_p99_ms']!s:>10}"
        )
    print("\n  tail (5% at 20x)     p50     p99   p99.9   extra upstream %")
    for name, row in result.get("tail", {}).items():
        if isinstance(row, dict):
            print(
                f"    {name:<14} {row['p50_ms']!s:>7} {row['p99_ms']!s:>7} {row['p999_ms']!s:>7}"
                f" {row['extra_upstream_pct']!s:>10}"
            )
    for name, row in result.get("failover", {}).items():
        print(f"\n  failover {name}: {row}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller counts (a smoke run)")
    parser.add_argument("--skip-litellm", action="store_true", help="do not measure LiteLLM")
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    print_table(result)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""Conversation benchmarks: send throughput and latency against the raw ceiling, and time to
the first reply token.

Real engines (embedded Postgres and nats-server, started as the test fixtures start them),
the real identity service (in this process) for credentials, and the conversation service as
its own process (`python -m conversation`, all interceptors and the outbox relay on). The
ceiling is `conversation_ceiling.py`: a bare grpc.aio handler doing the same inserts in one
transaction. The reply source is the test suite's stand-in router (zero latency), so the
time to first token is this service's own overhead.

Measured, side by side:
  - 32 concurrent senders, each in its own conversation: the service and the ceiling;
  - 32 concurrent senders all in one conversation (they queue on its row lock): both;
  (each side twice, interleaved, SECONDS each after a warm-up;)
  - a steady 500 sends/s (open loop) to the service: p50/p99;
  - SendAndStreamReply with a bot, one at a time: time to the first reply delta.

Every loop is bounded in calls and seconds; everything listens on 127.0.0.1. Prints one JSON
object on its last line.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import grpc
import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from nats.aio.msg import Msg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the stand-in router lives with the tests

from identity.main import build_app as build_identity  # noqa: E402
from identity.settings import IdentitySettings  # noqa: E402
from switchboard.access.v1 import access_pb2  # noqa: E402
from switchboard.conversation.v1 import conversation_pb2 as pb  # noqa: E402
from switchboard.conversation.v1 import conversation_pb2_grpc, events_pb2  # noqa: E402
from switchboard.identity.v1 import identity_pb2, identity_pb2_grpc  # noqa: E402
from switchboard_devstack import processes  # noqa: E402
from switchboard_devstack.nats_engine import NatsEngine  # noqa: E402
from switchboard_devstack.postgres_engine import PostgresEngine, ensure_runtime_dir  # noqa: E402
from switchboard_runtime.jetstream import connect_nats  # noqa: E402
from tests.integration.conversation.fake_llm_router import FakeLlmRouter  # noqa: E402

CONCURRENCY = 32
SECONDS = 6.0
WARMUP_SECONDS = 1.0
MAX_CALLS = 40_000
STEADY_RATE = 500
STEADY_SECONDS = 5.0
TTFT_SAMPLES = 40
SECRET = "bench-service-secret-0123456789abcdef"
PASSWORD = "correct horse battery staple"
TEXT = "The quick brown fox jumps over the lazy dog; a typical short chat message."

Send = Callable[[int, int], Awaitable[Any]]
if TYPE_CHECKING:
    Stub = conversation_pb2_grpc.ConversationServiceAsyncStub


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    #: The measured window (after the warm-up).
    elapsed: float = 0.0
    #: Every answered call, warm-up included, and the time from the first call to the last
    #: answer plus, for the service, until its outbox had published every event.
    answered: int = 0
    busy: float = 0.0
    drain: float | None = None

    def add(self, other: Result) -> None:
        self.latencies.extend(other.latencies)
        self.errors += other.errors
        self.elapsed += other.elapsed
        self.answered += other.answered
        self.busy += other.busy
        if other.drain is not None:
            self.drain = (self.drain or 0.0) + other.drain

    def summary(self, prefix: str) -> dict[str, float | int]:
        ordered = sorted(self.latencies)

        def percentile(p: float) -> float:
            if not ordered:
                return float("nan")
            return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 2)

        summary: dict[str, float | int] = {
            f"{prefix}_sends_per_second": round(len(ordered) / self.elapsed) if self.elapsed else 0,
        }
        if self.drain is not None:
            summary[f"{prefix}_sustained_sends_per_second"] = round(
                self.answered / (self.busy + self.drain)
            )
        return summary | {
            f"{prefix}_p50_ms": percentile(0.50),
            f"{prefix}_p99_ms": percentile(0.99),
            f"{prefix}_errors": self.errors,
        }


async def closed_loop(send: Send) -> Result:
    """CONCURRENCY senders back to back for SECONDS (after a warm-up), at most MAX_CALLS."""
    result = Result()
    started = time.perf_counter()
    measure_from = started + WARMUP_SECONDS
    stop_at = measure_from + SECONDS
    calls = 0

    async def worker(number: int) -> None:
        nonlocal calls
        sequence = 0
        while calls < MAX_CALLS:
            begin = time.perf_counter()
            if begin >= stop_at:
                return
            calls += 1
            sequence += 1
            try:
                await send(number, sequence)
            except grpc.aio.AioRpcError:
                result.errors += 1
                continue
            result.answered += 1
            if begin >= measure_from:
                result.latencies.append(time.perf_counter() - begin)

    await asyncio.gather(*(worker(n) for n in range(CONCURRENCY)))
    result.elapsed = min(time.perf_counter(), stop_at) - measure_from
    result.busy = time.perf_counter() - started
    return result


async def side_by_side(
    ceiling: Send, service: Send, *, server_dsn: str, service_dsn: str
) -> tuple[Result, Result]:
    """Both sides twice, in the order ceiling, service, service, ceiling, so that a drift in
    the machine's speed (other load, CPU clock) weighs on both alike. Each round starts
    from a checkpoint with the service's outbox published, so none pays for the work the
    one before left behind; the time the service takes to publish its backlog after a round
    is its `drain` (its sustained rate counts it)."""
    raw, real = Result(), Result()
    for into, send in ((raw, ceiling), (real, service), (real, service), (raw, ceiling)):
        await execute(server_dsn, "CHECKPOINT")
        result = await closed_loop(send)
        if into is real:
            started = time.perf_counter()
            await outbox_published(service_dsn)
            result.drain = time.perf_counter() - started
        into.add(result)
    return raw, real


async def execute(dsn: str, statement: str) -> object:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(statement)
    finally:
        await conn.close()


async def outbox_published(dsn: str, *, within: float = 120.0) -> None:
    """Until the service's outbox relay has published every committed event."""
    deadline = time.monotonic() + within
    pending = "SELECT count(*) FROM event_outbox WHERE published_at IS NULL"
    while await execute(dsn, pending):
        if time.monotonic() > deadline:
            raise TimeoutError("the outbox did not drain")
        await asyncio.sleep(0.02)


async def open_loop(send: Send, rate: int, seconds: float) -> Result:
    """One call every 1/rate seconds regardless of answers (latency from its scheduled time)."""
    result = Result()
    interval = 1.0 / rate
    total = int(rate * seconds)
    start = time.perf_counter() + 0.05
    tasks: list[asyncio.Task[None]] = []

    async def one(number: int, due: float) -> None:
        try:
            await send(number % CONCURRENCY, number)
        except grpc.aio.AioRpcError:
            result.errors += 1
            return
        result.latencies.append(time.perf_counter() - due)

    for number in range(total):
        due = start + number * interval
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(number, due)))
    await asyncio.gather(*tasks)
    result.elapsed = seconds
    return result


@contextlib.asynccontextmanager
async def child(command: list[str], log: Path, env: dict[str, str]) -> AsyncIterator[None]:
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(*command, stdout=out, stderr=out, env=env)
    try:
        yield
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout=15)
            except TimeoutError:
                process.kill()
                await process.wait()


async def wait_serving(address: str, *, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    async with grpc.aio.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            with contextlib.suppress(grpc.aio.AioRpcError):
                answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            await asyncio.sleep(0.1)
    raise TimeoutError(f"{address} did not start")


async def wait_port(address: str, *, within: float = 30.0) -> None:
    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection(host, int(port))
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise TimeoutError(f"{address} did not open")


async def run(workdir: Path, postgres: PostgresEngine, nats_url: str) -> dict[str, object]:
    identity_settings = IdentitySettings(
        grpc_host="127.0.0.1",
        grpc_port=0,
        metrics_port=0,
        log_level="WARNING",
        database_url=postgres.create_database("bench_identity"),
        nats_url=nats_url,
        signing_key_encryption_key=base64.b64encode(os.urandom(32)).decode(),
        service_client_secrets=(f"conversation={SECRET}",),
        password_hash_time_cost=1,
        password_hash_memory_kib=1024,
    )
    identity = build_identity(identity_settings)
    await identity.start()
    identity_addr = f"127.0.0.1:{identity.bound_port}"
    router = await FakeLlmRouter().start(identity_addr)
    try:
        return await measure(workdir, postgres, nats_url, identity_addr, router)
    finally:
        await router.stop()
        await identity.stop()


async def measure(
    workdir: Path,
    postgres: PostgresEngine,
    nats_url: str,
    identity_addr: str,
    router: FakeLlmRouter,
) -> dict[str, object]:
    async with grpc.aio.insecure_channel(identity_addr) as channel:
        identity = identity_pb2_grpc.IdentityServiceStub(channel)
        signed_up = await identity.SignUp(
            identity_pb2.SignUpRequest(
                tenant_name="Bench",
                tenant_slug="bench",
                email="owner@bench.test",
                password=PASSWORD,
                display_name="Owner",
            )
        )
        owner_auth = (("authorization", f"Bearer {signed_up.tokens.access_token}"),)
        others = []
        for n in range(2):
            created = await identity.CreateUser(
                identity_pb2.CreateUserRequest(
                    email=f"user{n}@bench.test",
                    password=PASSWORD,
                    display_name=f"User {n}",
                    role=access_pb2.ROLE_MEMBER,
                ),
                metadata=owner_auth,
            )
            others.append(created.user.user_id)

    service_port, ceiling_port = processes.free_port(), processes.free_port()
    service_addr, ceiling_addr = f"127.0.0.1:{service_port}", f"127.0.0.1:{ceiling_port}"
    base_env = {k: v for k, v in os.environ.items() if not k.endswith(("_URL", "_PORT", "_ADDR"))}
    service_env = base_env | {
        "DATABASE_URL": postgres.create_database("bench_conversation"),
        "NATS_URL": nats_url,
        "IDENTITY_ADDR": identity_addr,
        "LLM_ROUTER_ADDR": router.address,
        "SERVICE_CLIENT_SECRET": SECRET,
        "GRPC_HOST": "127.0.0.1",
        "GRPC_PORT": str(service_port),
        "METRICS_PORT": "0",
    }
    ceiling_dsn = postgres.create_database("bench_ceiling")
    results: dict[str, object] = {}
    async with (
        child([sys.executable, "-m", "conversation"], workdir / "conversation.log", service_env),
        child(
            [
                sys.executable,
                str(Path(__file__).parent / "conversation_ceiling.py"),
                ceiling_dsn,
                str(ceiling_port),
            ],
            workdir / "ceiling.log",
            base_env,
        ),
        grpc.aio.insecure_channel(service_addr) as service_channel,
        grpc.aio.insecure_channel(ceiling_addr) as ceiling_channel,
    ):
        await wait_serving(service_addr)
        await wait_port(ceiling_addr)
        service: Stub = conversation_pb2_grpc.ConversationServiceStub(service_channel)
        ceiling: Stub = conversation_pb2_grpc.ConversationServiceStub(ceiling_channel)

        # The service: one group conversation per sender, and one shared by all.
        async def group() -> str:
            response = await service.CreateConversation(
                pb.CreateConversationRequest(
                    kind=pb.CONVERSATION_KIND_GROUP, member_user_ids=others
                ),
                metadata=owner_auth,
            )
            return response.conversation.conversation_id

        own = [await group() for _ in range(CONCURRENCY)]
        shared = await group()
        # The ceiling: the same conversations, as rows of its own database.
        conn = await asyncpg.connect(ceiling_dsn)
        try:
            for conversation_id in [*own, shared]:
                await conn.execute(
                    "INSERT INTO conversations (conversation_id, tenant_id, kind, title,"
                    " created_by, created_at) VALUES ($1, $2, 3, '', 'bench', $3)",
                    conversation_id,
                    signed_up.tenant.tenant_id,
                    datetime.now(UTC),
                )
        finally:
            await conn.close()

        def sender(stub: Stub, target: Callable[[int], str]) -> Send:
            async def send(worker: int, sequence: int) -> None:
                await stub.SendMessage(
                    pb.SendMessageRequest(
                        conversation_id=target(worker),
                        client_message_id=uuid.uuid4().hex,
                        text=TEXT,
                    ),
                    metadata=owner_auth,
                    timeout=10,
                )

            return send

        for scope, target in (("", lambda w: own[w]), ("_one_conversation", lambda w: shared)):
            raw, real = await side_by_side(
                sender(ceiling, target),
                sender(service, target),
                server_dsn=postgres.dsn,
                service_dsn=service_env["DATABASE_URL"],
            )
            results |= raw.summary(f"ceiling{scope}") | real.summary(f"service{scope}")
        results |= await steady_rate(
            service, own, owner_auth, nats_url=nats_url, service_dsn=service_env["DATABASE_URL"]
        )
        results |= await time_to_first_token(service, owner_auth)
    for scope in ("", "_one_conversation"):
        ceiling_rate = results[f"ceiling{scope}_sends_per_second"]
        for kind in ("", "_sustained"):
            service_rate = results[f"service{scope}{kind}_sends_per_second"]
            assert isinstance(service_rate, int) and isinstance(ceiling_rate, int)
            results[f"service{kind}_vs_ceiling{scope}_ratio"] = (
                round(service_rate / ceiling_rate, 2) if ceiling_rate else 0.0
            )
    return results


async def steady_rate(
    service: Stub,
    conversations: list[str],
    owner_auth: tuple[tuple[str, str], ...],
    *,
    nats_url: str,
    service_dsn: str,
) -> dict[str, object]:
    """STEADY_RATE sends a second: their latency, and how long until each message's event
    reaches a NATS subscriber (what a watcher on another replica waits for)."""
    sent_at: dict[str, float] = {}
    heard_at: dict[str, float] = {}

    async def heard(message: Msg) -> None:
        event = events_pb2.MessageCreatedEvent.FromString(message.data)
        heard_at.setdefault(event.message.client_message_id, time.perf_counter())

    async def send(worker: int, sequence: int) -> None:
        key = uuid.uuid4().hex
        sent_at[key] = time.perf_counter()
        await service.SendMessage(
            pb.SendMessageRequest(
                conversation_id=conversations[worker], client_message_id=key, text=TEXT
            ),
            metadata=owner_auth,
            timeout=10,
        )

    client = await connect_nats(nats_url, name="conversation-bench")
    try:
        await client.subscribe("conversation.v1.message_created.*", cb=heard)
        await client.flush()
        steady = await open_loop(send, STEADY_RATE, STEADY_SECONDS)
        await outbox_published(service_dsn)
        await client.flush()
    finally:
        await client.close()
    prefix = f"service_at_{STEADY_RATE}_per_second"
    summary = steady.summary(prefix)
    del summary[f"{prefix}_sends_per_second"]
    lags = sorted(heard_at[key] - sent_at[key] for key in sent_at if key in heard_at)
    return summary | {
        f"{prefix}_event_published_p50_ms": round(statistics.median(lags) * 1000, 2),
        f"{prefix}_event_published_p99_ms": round(lags[int(0.99 * (len(lags) - 1))] * 1000, 2),
        f"{prefix}_events_heard": f"{len(lags)}/{len(sent_at)}",
    }


async def time_to_first_token(
    service: Stub, owner_auth: tuple[tuple[str, str], ...]
) -> dict[str, object]:
    bot = await service.CreateBot(
        pb.CreateBotRequest(bot=pb.Bot(name="Bench", model="default", system_prompt="Be brief.")),
        metadata=owner_auth,
    )
    chat = await service.CreateConversation(
        pb.CreateConversationRequest(kind=pb.CONVERSATION_KIND_ASSISTANT, bot_id=bot.bot.bot_id),
        metadata=owner_auth,
    )
    first_tokens: list[float] = []
    completions: list[float] = []
    for n in range(TTFT_SAMPLES + 3):
        begin = time.perf_counter()
        first: float | None = None
        call = service.SendAndStreamReply(
            pb.SendAndStreamReplyRequest(
                conversation_id=chat.conversation.conversation_id,
                client_message_id=f"ttft-{n}",
                text=f"question number {n}, please answer",
            ),
            metadata=owner_auth,
            timeout=30,
        )
        async for response in call:
            if first is None and response.HasField("reply_delta"):
                first = time.perf_counter() - begin
        if n >= 3 and first is not None:  # the first few warm the token and channel caches
            first_tokens.append(first)
            completions.append(time.perf_counter() - begin)
    ordered = sorted(first_tokens)
    return {
        "time_to_first_token_p50_ms": round(statistics.median(ordered) * 1000, 2),
        "time_to_first_token_p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))] * 1000, 2),
        "time_to_stored_reply_p50_ms": round(statistics.median(completions) * 1000, 2),
    }


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="conversation-bench-") as tmp:
        workdir = Path(tmp)
        ensure_runtime_dir(workdir / "run")
        with (
            PostgresEngine(workdir / "postgres", runtime_dir=workdir / "run") as postgres,
            NatsEngine(
                workdir / "nats", port=processes.free_port(), log_path=workdir / "nats.log"
            ) as nats,
        ):
            results = asyncio.run(run(workdir, postgres, nats.url))
    report: dict[str, object] = {"benchmark": "conversation", "concurrency": CONCURRENCY}
    report |= results
    report["goals"] = {
        "service_vs_ceiling_ratio": ">= 0.6",
        f"service_at_{STEADY_RATE}_per_second_p99_ms": "<= 50",
    }
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()

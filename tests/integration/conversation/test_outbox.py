"""The transactional outbox: a change committed by a process killed before publishing it is
published after a restart, once."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from nats.aio.client import Client

from switchboard.conversation.v1 import conversation_pb2 as pb
from switchboard.conversation.v1 import conversation_pb2_grpc, events_pb2
from switchboard_runtime.event_streams import CONVERSATION
from switchboard_runtime.jetstream import publish
from tests.identity_fixtures import SERVICE_SECRET, IdentityUnderTest
from tests.integration.conversation.conftest import (
    Person,
    TenantUnderTest,
    eventually,
    stored_events,
)
from tests.integration.conversation.fake_llm_router import FakeLlmRouter


class ServiceProcess:
    """`python -m conversation` as a real child process, configured from the environment."""

    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.env, self.port, self.log = env, port, log
        self.process: asyncio.subprocess.Process | None = None
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        self.stub = conversation_pb2_grpc.ConversationServiceStub(self.channel)

    async def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "conversation", env=self.env, stdout=out, stderr=out
            )
        health = health_pb2_grpc.HealthStub(self.channel)

        async def serving() -> bool:
            assert self.process is not None and self.process.returncode is None, (
                self.log.read_text()
            )
            try:
                answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
            except grpc.aio.AioRpcError:
                return False
            return answer.status == health_pb2.HealthCheckResponse.SERVING

        await eventually(serving, within=30, what="the service to serve")

    async def kill(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        return await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), timeout=15)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        await self.channel.close()


@pytest.fixture
async def service_process(
    identity: IdentityUnderTest,
    conversation_database: str,
    nats_url: str,
    llm_router: FakeLlmRouter,
    free_port: Callable[[], int],
    tmp_path: Path,
) -> AsyncIterator[Callable[..., ServiceProcess]]:
    started: list[ServiceProcess] = []
    base = {k: v for k, v in os.environ.items() if not k.endswith(("_URL", "_PORT", "_ADDR"))}

    def make(**env: str) -> ServiceProcess:
        port = free_port()
        environment = (
            base
            | {
                "DATABASE_URL": conversation_database,
                "NATS_URL": nats_url,
                "IDENTITY_ADDR": f"127.0.0.1:{identity.app.bound_port}",
                "LLM_ROUTER_ADDR": llm_router.address,
                "SERVICE_CLIENT_SECRET": SERVICE_SECRET,
                "GRPC_HOST": "127.0.0.1",
                "GRPC_PORT": str(port),
                "METRICS_PORT": "0",
                "SHUTDOWN_GRACE_SECONDS": "1",
            }
            | env
        )
        process = ServiceProcess(environment, port, tmp_path / f"conversation-{len(started)}.log")
        started.append(process)
        return process

    yield make
    for process in started:
        with contextlib.suppress(ProcessLookupError):
            await process.stop()


async def _direct_conversation_with_a_message(
    service: ServiceProcess, tenant: TenantUnderTest
) -> tuple[pb.Conversation, pb.Message]:
    alice: Person = await tenant.user()
    created = await service.stub.CreateConversation(
        pb.CreateConversationRequest(
            kind=pb.CONVERSATION_KIND_DIRECT, member_user_ids=[tenant.owner.user_id]
        ),
        metadata=alice.auth,
    )
    sent = await service.stub.SendMessage(
        pb.SendMessageRequest(
            conversation_id=created.conversation.conversation_id,
            client_message_id="m1",
            text="committed, not yet published",
        ),
        metadata=alice.auth,
    )
    return created.conversation, sent.message


async def test_an_event_committed_by_a_killed_process_is_published_once_after_restart(
    service_process: Callable[..., ServiceProcess],
    tenant: TenantUnderTest,
    nats_client: Client,
) -> None:
    js = nats_client.jetstream()
    # The relay of this process never runs: it dies with its events committed, unpublished.
    doomed = service_process(OUTBOX_RELAY_ENABLED="false")
    await doomed.start()
    conversation, message = await _direct_conversation_with_a_message(doomed, tenant)
    subjects = CONVERSATION.subject("*", conversation.conversation_id)
    assert await stored_events(js, subjects) == []

    assert await doomed.kill() == -signal.SIGKILL
    restarted = service_process()
    await restarted.start()

    await _relayed_everything(restarted)

    events = await stored_events(js, subjects)
    assert [subject.split(".")[2] for subject, _ in events] == [
        "conversation_created",
        "message_created",
    ]
    created = events_pb2.MessageCreatedEvent.FromString(events[1][1])
    assert created.message == message
    assert created.conversation_kind == pb.CONVERSATION_KIND_DIRECT


async def test_an_event_published_just_before_the_process_died_is_not_published_twice(
    service_process: Callable[..., ServiceProcess],
    tenant: TenantUnderTest,
    nats_client: Client,
) -> None:
    js = nats_client.jetstream()
    doomed = service_process(OUTBOX_RELAY_ENABLED="false")
    await doomed.start()
    conversation, _ = await _direct_conversation_with_a_message(doomed, tenant)
    # What a relay does before it marks rows published: publish them, by outbox id.
    pending = await _pending(doomed)
    for event_id, subject, payload in pending:
        await publish(js, subject, payload, msg_id=event_id)

    await doomed.kill()
    restarted = service_process()
    await restarted.start()
    await _relayed_everything(restarted)

    events = await stored_events(js, CONVERSATION.subject("*", conversation.conversation_id))
    assert [payload for _, payload in events] == [payload for _, _, payload in pending]


async def _pending(service: ServiceProcess) -> list[tuple[str, str, bytes]]:
    conn = await asyncpg.connect(service.env["DATABASE_URL"])
    try:
        rows = await conn.fetch(
            "SELECT event_id, subject, payload FROM event_outbox"
            " WHERE published_at IS NULL ORDER BY position"
        )
    finally:
        await conn.close()
    return [(str(row["event_id"]), row["subject"], row["payload"]) for row in rows]


async def _relayed_everything(service: ServiceProcess) -> None:
    async def nothing_pending() -> bool:
        return not await _pending(service)

    await eventually(nothing_pending, within=15, what="the outbox to drain")

"""Fixtures: the conversation service in-process on real Postgres and NATS, with the real
identity service for credentials and a stand-in LLM router.

    conversation_database  str   DSN of a database of its own (identity has fresh_database)
    llm_router             FakeLlmRouter, started against the test's identity
    start_conversation     (**setting overrides) -> ConversationUnderTest; all stopped after
    conversation           one started with the defaults
    tenant                 a signed-up tenant: its owner, and `await tenant.user()` for members
    connectors_stream      the CONNECTORS stream, declared afresh (the connectors service,
                           which owns it, is not part of these tests)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import asyncpg
import grpc
import grpc.aio
import nats.js.errors
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from conversation.main import build_app
from conversation.settings import ConversationSettings
from switchboard.access.v1 import access_pb2
from switchboard.conversation.v1 import conversation_pb2 as pb
from switchboard.conversation.v1 import conversation_pb2_grpc
from switchboard.identity.v1 import identity_pb2
from switchboard_devstack.postgres_engine import PostgresEngine
from switchboard_runtime.event_streams import CONNECTORS, CONVERSATION
from switchboard_runtime.jetstream import connect_nats, ensure_stream
from switchboard_runtime.server import ServiceApp
from tests.identity_fixtures import PASSWORD, SERVICE_SECRET, IdentityUnderTest, bearer
from tests.integration.conversation.fake_llm_router import FakeLlmRouter

T = TypeVar("T")


async def eventually(
    check: Callable[[], Awaitable[T]], *, within: float = 10.0, what: str = "condition"
) -> T:
    """Poll `check` until it returns something truthy; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def code_of(call: Awaitable[Any]) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


@dataclass
class Person:
    user_id: str
    token: str

    @property
    def auth(self) -> tuple[tuple[str, str], ...]:
        return bearer(self.token)


@dataclass
class TenantUnderTest:
    tenant_id: str
    slug: str
    owner: Person
    identity: IdentityUnderTest
    _users: int = 0

    async def user(self, role: int = access_pb2.ROLE_MEMBER) -> Person:
        self._users += 1
        email = f"user{self._users}-{uuid.uuid4().hex[:6]}@acme.test"
        created = await self.identity.stub.CreateUser(
            identity_pb2.CreateUserRequest(
                email=email, password=PASSWORD, display_name=email, role=role
            ),
            metadata=self.owner.auth,
        )
        login = await self.identity.stub.Login(
            identity_pb2.LoginRequest(tenant_slug=self.slug, email=email, password=PASSWORD)
        )
        return Person(created.user.user_id, login.tokens.access_token)

    async def api_key(self, scopes: list[str]) -> Person:
        created = await self.identity.stub.CreateApiKey(
            identity_pb2.CreateApiKeyRequest(name=f"key-{uuid.uuid4().hex[:6]}", scopes=scopes),
            metadata=self.owner.auth,
        )
        return Person(created.api_key.api_key_id, created.secret)


async def sign_up(identity: IdentityUnderTest, **overrides: Any) -> TenantUnderTest:
    signed_up = await identity.sign_up(**overrides)
    return TenantUnderTest(
        tenant_id=signed_up.tenant.tenant_id,
        slug=signed_up.tenant.slug,
        owner=Person(signed_up.user.user_id, signed_up.tokens.access_token),
        identity=identity,
    )


@dataclass
class ConversationUnderTest:
    app: ServiceApp
    stub: conversation_pb2_grpc.ConversationServiceStub
    channel: grpc.aio.Channel
    settings: ConversationSettings
    database_url: str

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.database_url)
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    async def wait_until_relayed(self) -> None:
        """Until every committed event has been published by the outbox relay."""

        async def relayed() -> bool:
            rows = await self.fetch(
                "SELECT count(*) AS n FROM event_outbox WHERE published_at IS NULL"
            )
            return bool(rows[0]["n"] == 0)

        await eventually(relayed, what="the outbox to be relayed")

    async def messages_in(self, conversation_id: str) -> list[asyncpg.Record]:
        return await self.fetch(
            "SELECT * FROM messages WHERE conversation_id = $1 ORDER BY sequence", conversation_id
        )

    async def create_bot(self, admin: Person, **fields: Any) -> pb.Bot:
        bot = pb.Bot(name="Helper", model="default", system_prompt="You are helpful.")
        for name, value in fields.items():
            if name == "history_window":
                bot.history_window.CopyFrom(value)
            else:
                setattr(bot, name, value)
        response = await self.stub.CreateBot(pb.CreateBotRequest(bot=bot), metadata=admin.auth)
        return response.bot

    async def assistant(self, user: Person, bot_id: str) -> pb.Conversation:
        response = await self.stub.CreateConversation(
            pb.CreateConversationRequest(kind=pb.CONVERSATION_KIND_ASSISTANT, bot_id=bot_id),
            metadata=user.auth,
        )
        return response.conversation

    async def group(self, creator: Person, *others: Person, bot_id: str = "") -> pb.Conversation:
        response = await self.stub.CreateConversation(
            pb.CreateConversationRequest(
                kind=pb.CONVERSATION_KIND_GROUP,
                title="Team",
                bot_id=bot_id,
                member_user_ids=[other.user_id for other in others],
            ),
            metadata=creator.auth,
        )
        return response.conversation

    async def send(
        self, sender: Person, conversation_id: str, text: str, client_id: str | None = None
    ) -> pb.SendMessageResponse:
        return await self.stub.SendMessage(
            pb.SendMessageRequest(
                conversation_id=conversation_id,
                client_message_id=client_id or uuid.uuid4().hex,
                text=text,
            ),
            metadata=sender.auth,
        )


@pytest.fixture
def conversation_database(postgres_engine: PostgresEngine) -> Iterator[str]:
    name = f"conv_{uuid.uuid4().hex[:12]}"
    dsn = postgres_engine.create_database(name)
    yield dsn
    postgres_engine.drop_database(name)


@pytest.fixture
async def llm_router(identity: IdentityUnderTest) -> AsyncIterator[FakeLlmRouter]:
    router = await FakeLlmRouter().start(f"127.0.0.1:{identity.app.bound_port}")
    yield router
    await router.stop()


@pytest.fixture
def conversation_settings(
    identity: IdentityUnderTest,
    conversation_database: str,
    nats_url: str,
    llm_router: FakeLlmRouter,
) -> ConversationSettings:
    return ConversationSettings(
        grpc_host="127.0.0.1",
        grpc_port=0,
        metrics_port=0,
        shutdown_grace_seconds=1.0,
        database_url=conversation_database,
        nats_url=nats_url,
        identity_addr=f"127.0.0.1:{identity.app.bound_port}",
        service_client_secret=SERVICE_SECRET,
        llm_router_addr=llm_router.address,
        reply_shutdown_grace_seconds=2.0,
        consumer_nak_delay_seconds=0.2,
        consumer_bind_retry_seconds=0.2,
    )


StartConversation = Callable[..., Awaitable[ConversationUnderTest]]


@pytest.fixture
async def start_conversation(
    conversation_settings: ConversationSettings,
) -> AsyncIterator[StartConversation]:
    running: list[ConversationUnderTest] = []

    async def start(**overrides: Any) -> ConversationUnderTest:
        settings = replace(conversation_settings, **overrides)
        app = build_app(settings)
        await app.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{app.bound_port}")
        under_test = ConversationUnderTest(
            app,
            conversation_pb2_grpc.ConversationServiceStub(channel),
            channel,
            settings,
            settings.database_url,
        )
        running.append(under_test)
        return under_test

    yield start
    for under_test in running:
        await under_test.channel.close()
        await under_test.app.stop()


@pytest.fixture
async def conversation(start_conversation: StartConversation) -> ConversationUnderTest:
    return await start_conversation()


@pytest.fixture
async def tenant(identity: IdentityUnderTest) -> TenantUnderTest:
    return await sign_up(identity)


@pytest.fixture
async def nats_client(nats_url: str) -> AsyncIterator[Client]:
    client = await connect_nats(nats_url, name="conversation-tests")
    yield client
    await client.close()


@pytest.fixture
async def connectors_stream(nats_client: Client) -> JetStreamContext:
    """A fresh CONNECTORS stream: nothing left over from earlier tests, no consumers."""
    js = nats_client.jetstream()
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await js.delete_stream(CONNECTORS.name)
    await ensure_stream(js, name=CONNECTORS.name, subjects=list(CONNECTORS.subjects))
    return js


@pytest.fixture(autouse=True)
async def _no_connectors_stream_left_over(nats_url: str) -> None:
    """Start every test without a CONNECTORS stream, so events other tests left unconsumed
    cannot reach this test's service (its durable consumers share names across tests)."""
    client = await connect_nats(nats_url, name="conversation-tests-cleanup")
    try:
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await client.jetstream().delete_stream(CONNECTORS.name)
    finally:
        await client.close()


async def stored_events(js: JetStreamContext, subject: str) -> list[tuple[str, bytes]]:
    """(subject, payload) of every message the CONVERSATION stream holds on `subject`, read
    once each through a fresh consumer: a duplicate publish would show up twice here."""
    subscription = await js.pull_subscribe(subject, stream=CONVERSATION.name)
    try:
        pending = (await subscription.consumer_info()).num_pending
        found: list[tuple[str, bytes]] = []
        while len(found) < pending:
            for message in await subscription.fetch(pending - len(found), timeout=5):
                found.append((message.subject, message.data))
                await message.ack()
        return found
    finally:
        await subscription.unsubscribe()


async def wait_for_events(
    js: JetStreamContext, subject: str, count: int, *, within: float = 10.0
) -> list[tuple[str, bytes]]:
    async def enough() -> list[tuple[str, bytes]]:
        found = await stored_events(js, subject)
        return found if len(found) >= count else []

    return await eventually(enough, within=within, what=f"{count} events on {subject}")


@dataclass
class Collected:
    """Responses of a server stream, gathered by a background task."""

    items: list[Any] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for(
        self, predicate: Callable[[list[Any]], bool], *, within: float = 10.0
    ) -> None:
        async with asyncio.timeout(within):
            while not predicate(self.items):
                self.changed.clear()
                await self.changed.wait()


@contextlib.asynccontextmanager
async def collecting(call: Any) -> AsyncIterator[Collected]:
    """Read a server-streaming call in the background; cancel it on exit."""
    collected = Collected()

    async def read() -> None:
        async for item in call:
            collected.items.append(item)
            collected.changed.set()

    task = asyncio.create_task(read())
    try:
        yield collected
    finally:
        call.cancel()
        with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
            await task

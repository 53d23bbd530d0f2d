"""Bot replies: streamed to the sender, stored once complete, even if the sender hangs up."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from conversation.replies import INTERRUPTED
from switchboard.conversation.v1 import conversation_pb2 as pb
from switchboard.llm.v1 import llm_pb2
from switchboard_runtime.principal import PrincipalKind
from tests.integration.conversation.conftest import (
    ConversationUnderTest,
    Person,
    StartConversation,
    TenantUnderTest,
    code_of,
    eventually,
)
from tests.integration.conversation.fake_llm_router import FAILURE_DETAILS, FakeLlmRouter


def _ask(
    conversation: ConversationUnderTest, user: Person, conversation_id: str, text: str, key: str
) -> grpc.aio.UnaryStreamCall[pb.SendAndStreamReplyRequest, pb.SendAndStreamReplyResponse]:
    return conversation.stub.SendAndStreamReply(
        pb.SendAndStreamReplyRequest(
            conversation_id=conversation_id, client_message_id=key, text=text
        ),
        metadata=user.auth,
    )


async def _assistant(
    conversation: ConversationUnderTest, tenant: TenantUnderTest, **bot: object
) -> tuple[Person, pb.Conversation, pb.Bot]:
    created = await conversation.create_bot(tenant.owner, **bot)
    alice = await tenant.user()
    return alice, await conversation.assistant(alice, created.bot_id), created


async def test_streamed_deltas_concatenate_to_the_stored_reply(
    conversation: ConversationUnderTest, tenant: TenantUnderTest
) -> None:
    alice, chat, bot = await _assistant(conversation, tenant)

    responses = [r async for r in _ask(conversation, alice, chat.conversation_id, "hi there", "q1")]

    kinds = [r.WhichOneof("event") for r in responses]
    assert kinds[0] == "message_accepted" and kinds[-1] == "reply_completed"
    assert set(kinds[1:-1]) == {"reply_delta"}
    deltas = [r.reply_delta for r in responses[1:-1]]
    reply = responses[-1].reply_completed
    assert "".join(d.text for d in deltas) == reply.text == "Echo: hi there"
    assert [d.index for d in deltas] == list(range(len(deltas)))
    assert {d.reply_message_id for d in deltas} == {reply.message_id}
    question = responses[0].message_accepted
    assert reply.reply_to_message_id == question.message_id
    assert (reply.author_kind, reply.author_id) == (pb.AUTHOR_KIND_BOT, bot.bot_id)
    assert reply.status == pb.MESSAGE_STATUS_ACCEPTED
    stored = await conversation.messages_in(chat.conversation_id)
    assert [(row["sequence"], row["text"]) for row in stored] == [
        (1, "hi there"),
        (2, "Echo: hi there"),
    ]


async def test_the_question_is_stored_before_streaming_and_the_reply_only_when_complete(
    conversation: ConversationUnderTest, tenant: TenantUnderTest, llm_router: FakeLlmRouter
) -> None:
    alice, chat, _ = await _assistant(conversation, tenant)
    llm_router.gate = asyncio.Event()
    call = _ask(conversation, alice, chat.conversation_id, "one two three", "q1")

    first = await call.read()
    delta = await call.read()
    stored_mid_reply = await conversation.messages_in(chat.conversation_id)
    llm_router.gate.set()
    rest = []
    while (response := await call.read()) is not grpc.aio.EOF:
        rest.append(response)

    assert first.WhichOneof("event") == "message_accepted"
    assert delta.WhichOneof("event") == "reply_delta"
    assert [row["text"] for row in stored_mid_reply] == ["one two three"]
    assert rest[-1].reply_completed.text == "Echo: one two three"


async def test_a_sender_who_hangs_up_mid_reply_still_gets_the_full_reply_stored(
    conversation: ConversationUnderTest, tenant: TenantUnderTest, llm_router: FakeLlmRouter
) -> None:
    alice, chat, _ = await _assistant(conversation, tenant)
    llm_router.gate = asyncio.Event()
    call = _ask(conversation, alice, chat.conversation_id, "tell me everything", "q1")
    await call.read()  # the question, stored
    await call.read()  # the first piece of the reply

    call.cancel()
    assert await call.code() == grpc.StatusCode.CANCELLED
    llm_router.gate.set()

    async def reply_stored() -> list[str]:
        rows = await conversation.messages_in(chat.conversation_id)
        return [row["text"] for row in rows if row["author_kind"] == pb.AUTHOR_KIND_BOT]

    assert await eventually(reply_stored, what="the reply") == ["Echo: tell me everything"]
    assert not llm_router.cancelled.is_set()


async def test_a_reply_cut_short_by_shutdown_is_stored_as_interrupted(
    start_conversation: StartConversation, tenant: TenantUnderTest, llm_router: FakeLlmRouter
) -> None:
    conversation = await start_conversation(reply_shutdown_grace_seconds=0.2)
    alice, chat, _ = await _assistant(conversation, tenant)
    llm_router.gate = asyncio.Event()  # the model never gets past its first word
    call = _ask(conversation, alice, chat.conversation_id, "take your time", "q1")
    await call.read()
    await call.read()

    await conversation.app.stop()

    stored = await conversation.messages_in(chat.conversation_id)
    assert [(row["text"], row["status"], row["failure_reason"]) for row in stored] == [
        ("take your time", pb.MESSAGE_STATUS_ACCEPTED, ""),
        ("Echo: ", pb.MESSAGE_STATUS_FAILED, INTERRUPTED),
    ]


async def test_a_failing_router_leaves_the_reply_stored_as_failed_with_the_reason(
    conversation: ConversationUnderTest, tenant: TenantUnderTest, llm_router: FakeLlmRouter
) -> None:
    alice, chat, _ = await _assistant(conversation, tenant)
    llm_router.fail_after = 2

    responses = [r async for r in _ask(conversation, alice, chat.conversation_id, "a b c d", "q")]

    reply = responses[-1].reply_completed
    assert reply.status == pb.MESSAGE_STATUS_FAILED
    assert reply.failure_reason == f"llm router: UNAVAILABLE: {FAILURE_DETAILS}"
    assert reply.text == "Echo: a "  # what had arrived before the failure
    stored = await conversation.messages_in(chat.conversation_id)
    assert [(row["status"], row["failure_reason"]) for row in stored] == [
        (pb.MESSAGE_STATUS_ACCEPTED, ""),
        (pb.MESSAGE_STATUS_FAILED, reply.failure_reason),
    ]


async def test_the_prompt_is_the_system_prompt_and_the_bots_history_window(
    conversation: ConversationUnderTest, tenant: TenantUnderTest, llm_router: FakeLlmRouter
) -> None:
    alice, chat, _ = await _assistant(
        conversation,
        tenant,
        system_prompt="Answer in one line.",
        history_window=pb.HistoryWindow(max_messages=3),
        temperature=0.5,
    )
    for n in range(1, 5):
        [r async for r in _ask(conversation, alice, chat.conversation_id, f"question {n}", f"q{n}")]

    last = llm_router.calls[-1]
    roles_and_texts = [(m.role, m.content) for m in last.request.params.messages]
    assert roles_and_texts == [
        (llm_pb2.CHAT_ROLE_SYSTEM, "Answer in one line."),
        (llm_pb2.CHAT_ROLE_USER, "question 3"),
        (llm_pb2.CHAT_ROLE_ASSISTANT, "Echo: question 3"),
        (llm_pb2.CHAT_ROLE_USER, "question 4"),
    ]
    assert last.request.params.model == "default"
    assert last.request.params.temperature == pytest.approx(0.5)
    assert not last.request.params.HasField("max_tokens")
    # The router saw this service acting for the tenant, not the user's own token.
    assert last.principal is not None
    assert (last.principal.kind, last.principal.subject) == (PrincipalKind.SERVICE, "conversation")
    assert last.principal.tenant_id == tenant.tenant_id


async def test_a_plain_send_to_a_bot_conversation_brings_the_reply_in_the_background(
    conversation: ConversationUnderTest, tenant: TenantUnderTest
) -> None:
    alice, chat, _ = await _assistant(conversation, tenant)

    sent = await conversation.send(alice, chat.conversation_id, "anyone home?")

    async def reply() -> list[tuple[int, str]]:
        rows = await conversation.messages_in(chat.conversation_id)
        return [(row["sequence"], row["text"]) for row in rows if row["sequence"] > 1]

    assert sent.message.sequence == 1
    assert await eventually(reply, what="the reply") == [(2, "Echo: anyone home?")]


async def test_a_retried_streamed_send_gets_the_stored_reply_without_asking_the_model_again(
    conversation: ConversationUnderTest, tenant: TenantUnderTest, llm_router: FakeLlmRouter
) -> None:
    alice, chat, _ = await _assistant(conversation, tenant)
    first = [r async for r in _ask(conversation, alice, chat.conversation_id, "hello", "same")]

    again = [r async for r in _ask(conversation, alice, chat.conversation_id, "hello", "same")]

    assert [r.WhichOneof("event") for r in again] == ["message_accepted", "reply_completed"]
    assert again[0].message_accepted == first[0].message_accepted
    assert again[-1].reply_completed == first[-1].reply_completed
    assert len(llm_router.calls) == 1
    assert len(await conversation.messages_in(chat.conversation_id)) == 2


async def test_asking_for_a_reply_where_there_is_no_bot_is_refused_and_stores_nothing(
    conversation: ConversationUnderTest, tenant: TenantUnderTest
) -> None:
    alice, bob = await tenant.user(), await tenant.user()
    group = await conversation.group(tenant.owner, alice, bob)

    code = await code_of(_ask(conversation, alice, group.conversation_id, "bot?", "q").read())

    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert await conversation.messages_in(group.conversation_id) == []


async def test_a_deleted_bot_stops_replying_and_its_conversations_keep_their_history(
    conversation: ConversationUnderTest, tenant: TenantUnderTest, llm_router: FakeLlmRouter
) -> None:
    alice, chat, bot = await _assistant(conversation, tenant)
    [r async for r in _ask(conversation, alice, chat.conversation_id, "before", "q1")]
    await conversation.stub.DeleteBot(
        pb.DeleteBotRequest(bot_id=bot.bot_id), metadata=tenant.owner.auth
    )

    after = [r async for r in _ask(conversation, alice, chat.conversation_id, "after", "q2")]

    assert [r.WhichOneof("event") for r in after] == ["message_accepted"]
    stored = await conversation.messages_in(chat.conversation_id)
    assert [row["text"] for row in stored] == ["before", "Echo: before", "after"]
    assert len(llm_router.calls) == 1

"""Watching a conversation live, from any replica, resuming with no gap and no duplicate."""

from __future__ import annotations

import asyncio
from typing import Any

from switchboard.conversation.v1 import conversation_pb2 as pb
from tests.integration.conversation.conftest import (
    ConversationUnderTest,
    Person,
    StartConversation,
    TenantUnderTest,
    collecting,
)


def _watch(
    conversation: ConversationUnderTest, watcher: Person, conversation_id: str, after: int = 0
) -> Any:
    return conversation.stub.WatchConversation(
        pb.WatchConversationRequest(conversation_id=conversation_id, after_sequence=after),
        metadata=watcher.auth,
    )


def _sequences(items: list[pb.WatchConversationResponse]) -> list[int]:
    return [i.message_created.sequence for i in items if i.WhichOneof("event") == "message_created"]


async def test_a_watcher_resuming_from_its_last_sequence_gets_exactly_what_it_missed(
    conversation: ConversationUnderTest, tenant: TenantUnderTest
) -> None:
    alice, bob = await tenant.user(), await tenant.user()
    group = await conversation.group(tenant.owner, alice, bob)
    cid = group.conversation_id
    for n in range(3):
        await conversation.send(alice, cid, f"before {n}")
    async with collecting(_watch(conversation, bob, cid)) as first:
        await first.wait_for(lambda items: len(items) == 3)
    last_seen = first.items[-1].message_created.sequence

    for n in range(10):  # bob is away
        await conversation.send(alice, cid, f"while away {n}")
    async with collecting(_watch(conversation, bob, cid, after=last_seen)) as resumed:
        await resumed.wait_for(lambda items: len(items) == 10)
        await conversation.send(alice, cid, "live again")
        await resumed.wait_for(lambda items: len(items) == 11)

    assert _sequences(first.items) == [1, 2, 3]
    assert _sequences(resumed.items) == list(range(4, 15))
    assert [i.message_created.text for i in resumed.items[:10]] == [
        f"while away {n}" for n in range(10)
    ]


async def test_messages_sent_while_a_watch_starts_arrive_once_each_and_in_order(
    conversation: ConversationUnderTest, tenant: TenantUnderTest
) -> None:
    alice, bob = await tenant.user(), await tenant.user()
    group = await conversation.group(tenant.owner, alice, bob)
    cid = group.conversation_id
    for n in range(20):
        await conversation.send(alice, cid, f"old {n}")

    sending = asyncio.gather(*(conversation.send(alice, cid, f"new {n}") for n in range(40)))
    async with collecting(_watch(conversation, bob, cid, after=5)) as watched:
        await sending
        await watched.wait_for(lambda items: len(_sequences(items)) >= 55)

    assert _sequences(watched.items) == list(range(6, 61))


async def test_watchers_on_another_replica_see_messages_reply_pieces_and_status_changes(
    start_conversation: StartConversation, tenant: TenantUnderTest
) -> None:
    replica_a = await start_conversation()
    replica_b = await start_conversation()  # same database and NATS, another process's worth
    bot = await replica_a.create_bot(tenant.owner)
    alice = await tenant.user()
    chat = await replica_a.assistant(alice, bot.bot_id)
    cid = chat.conversation_id

    async def ask(text: str, key: str) -> pb.Message:
        call = replica_a.stub.SendAndStreamReply(
            pb.SendAndStreamReplyRequest(conversation_id=cid, client_message_id=key, text=text),
            metadata=alice.auth,
        )
        return [r async for r in call][-1].reply_completed

    await ask("hello", "q1")
    async with collecting(_watch(replica_b, alice, cid)) as watched:
        # Once the replay is through, the watch is live (it subscribes before replaying).
        await watched.wait_for(lambda items: _sequences(items) == [1, 2])
        reply = await ask("x y z", "q2")
        await watched.wait_for(lambda items: _sequences(items) == [1, 2, 3, 4])
        await replica_a.stub.UpdateMessageStatus(
            pb.UpdateMessageStatusRequest(
                conversation_id=cid, message_id=reply.message_id, status=pb.MESSAGE_STATUS_READ
            ),
            metadata=alice.auth,
        )
        await watched.wait_for(lambda items: items[-1].WhichOneof("event") == "status_changed")

    live = watched.items[2:]  # after the replay of the first exchange
    kinds = [i.WhichOneof("event") for i in live]
    deltas = "".join(i.reply_delta.text for i in live if i.HasField("reply_delta"))
    assert kinds[0] == "message_created" and kinds[-2:] == ["message_created", "status_changed"]
    assert set(kinds[1:-2]) == {"reply_delta"}
    assert deltas == reply.text == "Echo: x y z"
    assert watched.items[-2].message_created == reply
    change = watched.items[-1].status_changed
    assert (change.message_id, change.status) == (reply.message_id, pb.MESSAGE_STATUS_READ)


async def test_closing_a_conversation_ends_its_watch_with_the_closed_conversation(
    conversation: ConversationUnderTest, tenant: TenantUnderTest
) -> None:
    alice, bob = await tenant.user(), await tenant.user()
    group = await conversation.group(tenant.owner, alice, bob)
    cid = group.conversation_id
    call = _watch(conversation, bob, cid)
    await conversation.send(alice, cid, "last words")

    await conversation.stub.CloseConversation(
        pb.CloseConversationRequest(conversation_id=cid), metadata=alice.auth
    )
    items = [item async for item in call]

    assert [i.WhichOneof("event") for i in items] == ["message_created", "conversation_closed"]
    assert items[-1].conversation_closed.state == pb.CONVERSATION_STATE_CLOSED
    # Watching a closed conversation replays it and ends at once.
    again = [item async for item in _watch(conversation, bob, cid)]
    assert [i.WhichOneof("event") for i in again] == ["message_created", "conversation_closed"]

"""Sending is idempotent by the client's id, and numbers messages 1, 2, 3, ... with no gap."""

from __future__ import annotations

import asyncio

from switchboard.conversation.v1 import conversation_pb2 as pb
from tests.integration.conversation.conftest import ConversationUnderTest, TenantUnderTest


async def test_fifty_concurrent_sends_with_one_idempotency_id_store_one_message_for_all(
    conversation: ConversationUnderTest, tenant: TenantUnderTest
) -> None:
    alice, bob = await tenant.user(), await tenant.user()
    group = await conversation.group(tenant.owner, alice, bob)

    responses = await asyncio.gather(
        *(
            conversation.send(alice, group.conversation_id, "hello", client_id="msg-1")
            for _ in range(50)
        )
    )

    assert len({r.message.message_id for r in responses}) == 1
    assert sum(r.created for r in responses) == 1
    assert {r.message.sequence for r in responses} == {1}
    assert {r.message.text for r in responses} == {"hello"}
    stored = await conversation.messages_in(group.conversation_id)
    assert [(row["sequence"], row["client_message_id"]) for row in stored] == [(1, "msg-1")]
    got = await conversation.stub.GetConversation(
        pb.GetConversationRequest(conversation_id=group.conversation_id), metadata=alice.auth
    )
    assert got.conversation.last_sequence == 1


async def test_two_hundred_concurrent_sends_to_one_conversation_are_numbered_1_to_200(
    conversation: ConversationUnderTest, tenant: TenantUnderTest
) -> None:
    alice, bob = await tenant.user(), await tenant.user()
    group = await conversation.group(tenant.owner, alice, bob)
    senders = [tenant.owner, alice, bob]

    responses = await asyncio.gather(
        *(
            conversation.send(senders[i % 3], group.conversation_id, f"message {i}", f"m-{i}")
            for i in range(200)
        )
    )

    assert sorted(r.message.sequence for r in responses) == list(range(1, 201))
    assert all(r.created for r in responses)
    stored = await conversation.messages_in(group.conversation_id)
    assert [row["sequence"] for row in stored] == list(range(1, 201))
    # Each caller's answer is the message it sent, under the number it was stored with.
    by_text = {row["text"]: row["sequence"] for row in stored}
    assert all(by_text[r.message.text] == r.message.sequence for r in responses)


async def test_a_resent_message_returns_the_stored_one_and_takes_no_number(
    conversation: ConversationUnderTest, tenant: TenantUnderTest
) -> None:
    alice, bob = await tenant.user(), await tenant.user()
    group = await conversation.group(tenant.owner, alice, bob)
    first = await conversation.send(alice, group.conversation_id, "one", "a")

    again = await conversation.send(alice, group.conversation_id, "one, edited?", "a")
    second = await conversation.send(bob, group.conversation_id, "two", "b")

    assert first.created and not again.created
    assert again.message == first.message
    assert second.message.sequence == 2


async def test_messages_page_forward_and_back_with_cursors(
    conversation: ConversationUnderTest, tenant: TenantUnderTest
) -> None:
    alice, bob = await tenant.user(), await tenant.user()
    group = await conversation.group(tenant.owner, alice, bob)
    for i in range(1, 8):
        await conversation.send(alice, group.conversation_id, f"m{i}")

    async def page(token: str = "", newest_first: bool = False) -> pb.ListMessagesResponse:
        return await conversation.stub.ListMessages(
            pb.ListMessagesRequest(
                conversation_id=group.conversation_id,
                page_size=3,
                page_token=token,
                newest_first=newest_first,
            ),
            metadata=bob.auth,
        )

    def texts(response: pb.ListMessagesResponse) -> list[str]:
        return [m.text for m in response.messages]

    first = await page()
    second = await page(first.next_page_token)
    third = await page(second.next_page_token)
    back = await page(third.previous_page_token)
    newest = await page(newest_first=True)
    older = await page(newest.next_page_token)

    assert texts(first) == ["m1", "m2", "m3"] and first.previous_page_token == ""
    assert texts(second) == ["m4", "m5", "m6"]
    assert texts(third) == ["m7"] and third.next_page_token == ""
    assert texts(back) == ["m6", "m5", "m4"]
    assert texts(newest) == ["m7", "m6", "m5"]
    assert texts(older) == ["m4", "m3", "m2"]


async def test_a_message_can_be_read_back_by_id(
    conversation: ConversationUnderTest, tenant: TenantUnderTest
) -> None:
    alice, bob = await tenant.user(), await tenant.user()
    group = await conversation.group(tenant.owner, alice, bob)
    sent = await conversation.send(alice, group.conversation_id, "naïve café ☕", "x")

    got = await conversation.stub.GetMessage(
        pb.GetMessageRequest(
            conversation_id=group.conversation_id, message_id=sent.message.message_id
        ),
        metadata=bob.auth,
    )

    assert got.message == sent.message
    assert got.message.author_id == alice.user_id
    assert got.message.author_kind == pb.AUTHOR_KIND_USER
    assert got.message.status == pb.MESSAGE_STATUS_ACCEPTED

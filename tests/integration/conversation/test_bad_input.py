"""Bad input gets a clear status (field violations where a field is at fault) and writes nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import grpc
import pytest

from switchboard.conversation.v1 import conversation_pb2 as pb
from switchboard_runtime.grpc_errors import field_violations_of
from tests.integration.conversation.conftest import (
    ConversationUnderTest,
    Person,
    TenantUnderTest,
    code_of,
)

SEND = "/switchboard.conversation.v1.ConversationService/SendMessage"


class Written:
    """What the database holds: messages, sequence counters and pending events."""

    def __init__(self, conversation: ConversationUnderTest) -> None:
        self._conversation = conversation

    async def snapshot(self) -> tuple[object, ...]:
        messages = await self._conversation.fetch("SELECT count(*) AS n FROM messages")
        sequences = await self._conversation.fetch(
            "SELECT conversation_id, last_sequence FROM conversations ORDER BY conversation_id"
        )
        outbox = await self._conversation.fetch("SELECT count(*) AS n FROM event_outbox")
        return (messages[0]["n"], [tuple(row) for row in sequences], outbox[0]["n"])


@pytest.fixture
async def setting(
    conversation: ConversationUnderTest, tenant: TenantUnderTest
) -> AsyncIterator[tuple[ConversationUnderTest, Person, Person, str]]:
    alice, bob = await tenant.user(), await tenant.user()
    group = await conversation.group(tenant.owner, alice, bob)
    await conversation.send(alice, group.conversation_id, "first")
    yield conversation, alice, await tenant.user(), group.conversation_id


async def _rejected_without_writing(
    conversation: ConversationUnderTest, call: object
) -> grpc.aio.AioRpcError:
    written = Written(conversation)
    before = await written.snapshot()
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call  # type: ignore[misc]
    assert await written.snapshot() == before
    return raised.value


async def test_empty_text_is_invalid_and_stores_nothing(
    setting: tuple[ConversationUnderTest, Person, Person, str],
) -> None:
    conversation, alice, _, conversation_id = setting
    error = await _rejected_without_writing(
        conversation, conversation.send(alice, conversation_id, "")
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in field_violations_of(error)] == ["text"]


async def test_text_over_8000_characters_is_invalid_and_stores_nothing(
    setting: tuple[ConversationUnderTest, Person, Person, str],
) -> None:
    conversation, alice, _, conversation_id = setting
    error = await _rejected_without_writing(
        conversation, conversation.send(alice, conversation_id, "é" * 8001)
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in field_violations_of(error)] == ["text"]
    # 8,000 characters (16,000 bytes of UTF-8) are within the limit.
    accepted = await conversation.send(alice, conversation_id, "é" * 8000)
    assert accepted.created


async def test_text_that_is_not_valid_utf8_is_invalid_argument_not_an_internal_error(
    setting: tuple[ConversationUnderTest, Person, Person, str],
) -> None:
    conversation, alice, _, conversation_id = setting
    valid = pb.SendMessageRequest(conversation_id=conversation_id, client_message_id="bad-1")
    # Field 3 (text), length 4: "ok" followed by bytes that are not UTF-8.
    raw = valid.SerializeToString() + b"\x1a\x04ok\xff\xfe"
    send_raw = conversation.channel.unary_unary(
        SEND, request_serializer=None, response_deserializer=pb.SendMessageResponse.FromString
    )

    error = await _rejected_without_writing(conversation, send_raw(raw, metadata=alice.auth))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations_of(error) == [("text", "must be valid UTF-8")]
    assert "Error parsing" not in (error.details() or "")


async def test_invalid_utf8_from_an_anonymous_caller_is_refused_as_unauthenticated(
    setting: tuple[ConversationUnderTest, Person, Person, str],
) -> None:
    conversation, _, _, conversation_id = setting
    raw = pb.SendMessageRequest(conversation_id=conversation_id).SerializeToString()
    send_raw = conversation.channel.unary_unary(SEND, request_serializer=None)

    code = await code_of(send_raw(raw + b"\x1a\x01\xff"))

    assert code == grpc.StatusCode.UNAUTHENTICATED


async def test_an_unknown_conversation_is_not_found(
    setting: tuple[ConversationUnderTest, Person, Person, str],
) -> None:
    conversation, alice, _, _ = setting
    error = await _rejected_without_writing(
        conversation, conversation.send(alice, str(uuid.uuid4()), "hello?")
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_a_non_member_posting_is_denied_and_stores_nothing(
    setting: tuple[ConversationUnderTest, Person, Person, str],
) -> None:
    conversation, _, outsider, conversation_id = setting
    error = await _rejected_without_writing(
        conversation, conversation.send(outsider, conversation_id, "let me in")
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_non_member_cannot_read_the_messages_either(
    setting: tuple[ConversationUnderTest, Person, Person, str],
) -> None:
    conversation, _, outsider, conversation_id = setting
    code = await code_of(
        conversation.stub.ListMessages(
            pb.ListMessagesRequest(conversation_id=conversation_id), metadata=outsider.auth
        )
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED


async def test_posting_to_a_closed_conversation_is_a_failed_precondition(
    setting: tuple[ConversationUnderTest, Person, Person, str],
) -> None:
    conversation, alice, _, conversation_id = setting
    await conversation.stub.CloseConversation(
        pb.CloseConversationRequest(conversation_id=conversation_id), metadata=alice.auth
    )
    error = await _rejected_without_writing(
        conversation, conversation.send(alice, conversation_id, "anyone?")
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.parametrize("page_size", [-1, 201])
async def test_a_page_size_out_of_range_is_invalid(
    setting: tuple[ConversationUnderTest, Person, Person, str], page_size: int
) -> None:
    conversation, alice, _, conversation_id = setting
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await conversation.stub.ListMessages(
            pb.ListMessagesRequest(conversation_id=conversation_id, page_size=page_size),
            metadata=alice.auth,
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in field_violations_of(raised.value)] == ["page_size"]


async def test_a_forged_page_token_is_invalid(
    setting: tuple[ConversationUnderTest, Person, Person, str],
) -> None:
    conversation, alice, _, conversation_id = setting
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await conversation.stub.ListMessages(
            pb.ListMessagesRequest(conversation_id=conversation_id, page_token="bm90LWEtdG9rZW4"),
            metadata=alice.auth,
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in field_violations_of(raised.value)] == ["page_token"]


async def test_a_conversation_id_that_is_not_a_uuid_is_invalid(
    setting: tuple[ConversationUnderTest, Person, Person, str],
) -> None:
    conversation, alice, _, _ = setting
    error = await _rejected_without_writing(
        conversation, conversation.send(alice, "not-a-uuid", "hi")
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in field_violations_of(error)] == ["conversation_id"]

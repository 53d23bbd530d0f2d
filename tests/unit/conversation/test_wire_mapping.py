"""The service's edges: undecodable requests, connector events, and the proto enum numbers."""

from __future__ import annotations

import uuid

import pytest

from conversation.channel_consumers import decode_delivery, decode_inbound
from conversation.domain import AuthorKind, ConversationKind, MessageStatus
from conversation.request_decoding import (
    UndecodableRequest,
    invalid_utf8_fields,
    tolerant_deserializer,
)
from switchboard.connectors.v1 import connectors_pb2
from switchboard.connectors.v1 import events_pb2 as connector_events
from switchboard.conversation.v1 import conversation_pb2 as pb


def test_invalid_utf8_is_traced_to_the_field_even_inside_nested_and_repeated_fields() -> None:
    good = pb.CreateBotRequest(bot=pb.Bot(name="ok", model="m")).SerializeToString()
    # bot (field 1) holding system_prompt (field 4) = b"\xff"
    nested = b"\x0a\x03\x22\x01\xff"
    repeated = (
        pb.CreateConversationRequest(member_user_ids=["a"]).SerializeToString() + b"\x22\x01\xc3"
    )
    assert invalid_utf8_fields(pb.CreateBotRequest.DESCRIPTOR, good) == []
    assert invalid_utf8_fields(pb.CreateBotRequest.DESCRIPTOR, nested) == [
        ("bot.system_prompt", "must be valid UTF-8")
    ]
    assert invalid_utf8_fields(pb.CreateConversationRequest.DESCRIPTOR, repeated) == [
        ("member_user_ids[1]", "must be valid UTF-8")
    ]


def test_the_tolerant_deserializer_parses_good_bytes_and_describes_bad_ones() -> None:
    deserialize = tolerant_deserializer(pb.SendMessageRequest)
    good = pb.SendMessageRequest(text="héllo").SerializeToString()
    assert deserialize(good) == pb.SendMessageRequest(text="héllo")
    bad = deserialize(b"\x1a\x02\xe2\x82")
    assert isinstance(bad, UndecodableRequest)
    assert bad.violations == [("text", "must be valid UTF-8")]
    garbage = deserialize(b"\xff\xff\xff")
    assert isinstance(garbage, UndecodableRequest)
    assert garbage.violations == [("", "the request is not a valid protobuf message")]


def test_domain_enums_use_the_contracts_numbers() -> None:
    for status in MessageStatus:
        assert pb.MessageStatus.Name(int(status)) == f"MESSAGE_STATUS_{status.name}"
    for kind in ConversationKind:
        assert pb.ConversationKind.Name(int(kind)) == f"CONVERSATION_KIND_{kind.name}"
    for author in AuthorKind:
        assert pb.AuthorKind.Name(int(author)) == f"AUTHOR_KIND_{author.name}"


def test_delivery_statuses_map_to_message_statuses_and_pending_to_nothing() -> None:
    def update(status: connectors_pb2.DeliveryStatus.ValueType) -> MessageStatus | None:
        event = connector_events.DeliveryUpdatedEvent(
            tenant_id=str(uuid.uuid4()),
            delivery=connectors_pb2.Delivery(
                conversation_id=str(uuid.uuid4()), message_id=str(uuid.uuid4()), status=status
            ),
        )
        return decode_delivery(event.SerializeToString()).status

    assert update(connectors_pb2.DELIVERY_STATUS_PENDING) is None
    assert update(connectors_pb2.DELIVERY_STATUS_SENT) is MessageStatus.SENT
    assert update(connectors_pb2.DELIVERY_STATUS_DELIVERED) is MessageStatus.DELIVERED
    assert update(connectors_pb2.DELIVERY_STATUS_READ) is MessageStatus.READ
    assert update(connectors_pb2.DELIVERY_STATUS_FAILED) is MessageStatus.FAILED


def test_an_inbound_event_with_ids_that_are_not_uuids_is_poison() -> None:
    event = connector_events.InboundMessageReceivedEvent(
        tenant_id="not-a-uuid", channel_id=str(uuid.uuid4()), external_contact_id="x"
    )
    with pytest.raises(ValueError, match="tenant_id"):
        decode_inbound(event.SerializeToString())

"""Bots and conversations: who may create, read and post, within one tenant and never across."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from switchboard.access.v1 import access_pb2
from switchboard.conversation.v1 import conversation_pb2 as pb
from switchboard_runtime.grpc_errors import field_violations_of
from tests.identity_fixtures import IdentityUnderTest
from tests.integration.conversation.conftest import (
    ConversationUnderTest,
    TenantUnderTest,
    code_of,
    sign_up,
)


async def test_each_kind_of_conversation_gets_the_members_and_bot_it_needs(
    conversation: ConversationUnderTest, tenant: TenantUnderTest
) -> None:
    bot = await conversation.create_bot(tenant.owner)
    alice, bob = await tenant.user(), await tenant.user()

    async def violation(**fields: object) -> list[str]:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await conversation.stub.CreateConversation(
                pb.CreateConversationRequest(**fields),
                metadata=alice.auth,  # type: ignore[arg-type]
            )
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        return [field for field, _ in field_violations_of(raised.value)]

    assert await violation(kind=pb.CONVERSATION_KIND_ASSISTANT) == ["bot_id"]
    assert await violation(
        kind=pb.CONVERSATION_KIND_DIRECT, bot_id=bot.bot_id, member_user_ids=[bob.user_id]
    ) == ["bot_id"]
    assert await violation(kind=pb.CONVERSATION_KIND_DIRECT) == ["member_user_ids"]
    assert await violation(kind=pb.CONVERSATION_KIND_GROUP, member_user_ids=[bob.user_id]) == [
        "member_user_ids"
    ]
    assert await violation(kind=pb.CONVERSATION_KIND_UNSPECIFIED) == ["kind"]
    missing_bot = await code_of(
        conversation.stub.CreateConversation(
            pb.CreateConversationRequest(
                kind=pb.CONVERSATION_KIND_ASSISTANT, bot_id=str(uuid.uuid4())
            ),
            metadata=alice.auth,
        )
    )
    assert missing_bot == grpc.StatusCode.NOT_FOUND

    direct = await conversation.stub.CreateConversation(
        pb.CreateConversationRequest(
            kind=pb.CONVERSATION_KIND_DIRECT, member_user_ids=[bob.user_id]
        ),
        metadata=alice.auth,
    )
    assistant = await conversation.assistant(alice, bot.bot_id)
    assert sorted(direct.conversation.member_user_ids) == sorted([alice.user_id, bob.user_id])
    assert list(assistant.member_user_ids) == [alice.user_id]
    assert assistant.state == pb.CONVERSATION_STATE_OPEN and assistant.last_sequence == 0


async def test_channel_conversations_are_opened_by_admins_once_per_contact(
    conversation: ConversationUnderTest, tenant: TenantUnderTest
) -> None:
    bot = await conversation.create_bot(tenant.owner)
    member = await tenant.user()
    request = pb.CreateConversationRequest(
        kind=pb.CONVERSATION_KIND_CHANNEL,
        bot_id=bot.bot_id,
        channel_contact=pb.ChannelContact(
            channel_id=str(uuid.uuid4()), external_contact_id="+15550100", display_name="Sam"
        ),
    )

    by_member = await code_of(conversation.stub.CreateConversation(request, metadata=member.auth))
    opened = await conversation.stub.CreateConversation(request, metadata=tenant.owner.auth)
    again = await code_of(conversation.stub.CreateConversation(request, metadata=tenant.owner.auth))

    assert by_member == grpc.StatusCode.PERMISSION_DENIED
    assert opened.conversation.kind == pb.CONVERSATION_KIND_CHANNEL
    assert list(opened.conversation.member_user_ids) == []
    assert again == grpc.StatusCode.ALREADY_EXISTS


async def test_another_tenant_finds_nothing_of_this_one(
    conversation: ConversationUnderTest, tenant: TenantUnderTest, identity: IdentityUnderTest
) -> None:
    bot = await conversation.create_bot(tenant.owner)
    alice = await tenant.user()
    chat = await conversation.assistant(alice, bot.bot_id)
    await conversation.send(alice, chat.conversation_id, "private")
    other = await sign_up(identity, email="owner@other.test")
    cid = chat.conversation_id

    codes = [
        await code_of(
            conversation.stub.GetConversation(
                pb.GetConversationRequest(conversation_id=cid), metadata=other.owner.auth
            )
        ),
        await code_of(conversation.send(other.owner, cid, "hello?")),
        await code_of(
            conversation.stub.GetBot(pb.GetBotRequest(bot_id=bot.bot_id), metadata=other.owner.auth)
        ),
        await code_of(
            conversation.stub.ListMessages(
                pb.ListMessagesRequest(conversation_id=cid), metadata=other.owner.auth
            )
        ),
    ]
    listed = await conversation.stub.ListConversations(
        pb.ListConversationsRequest(), metadata=other.owner.auth
    )
    bots = await conversation.stub.ListBots(pb.ListBotsRequest(), metadata=other.owner.auth)

    assert codes == [grpc.StatusCode.NOT_FOUND] * 4
    assert list(listed.conversations) == [] and list(bots.bots) == []
    authors = {row["author_id"] for row in await conversation.messages_in(cid)}
    assert other.owner.user_id not in authors


async def test_admins_read_every_conversation_and_members_only_their_own(
    conversation: ConversationUnderTest, tenant: TenantUnderTest
) -> None:
    alice, bob, carol = await tenant.user(), await tenant.user(), await tenant.user()
    admin = await tenant.user(access_pb2.ROLE_ADMIN)
    direct = await conversation.stub.CreateConversation(
        pb.CreateConversationRequest(
            kind=pb.CONVERSATION_KIND_DIRECT, member_user_ids=[bob.user_id]
        ),
        metadata=alice.auth,
    )
    cid = direct.conversation.conversation_id

    seen_by_admin = await conversation.stub.ListConversations(
        pb.ListConversationsRequest(), metadata=admin.auth
    )
    seen_by_carol = await conversation.stub.ListConversations(
        pb.ListConversationsRequest(), metadata=carol.auth
    )
    carol_reads = await code_of(
        conversation.stub.GetConversation(
            pb.GetConversationRequest(conversation_id=cid), metadata=carol.auth
        )
    )
    admin_posts = await conversation.send(admin, cid, "moderator here")

    assert [c.conversation_id for c in seen_by_admin.conversations] == [cid]
    assert list(seen_by_carol.conversations) == []
    assert carol_reads == grpc.StatusCode.PERMISSION_DENIED
    assert admin_posts.message.author_id == admin.user_id


async def test_an_api_key_reaches_the_conversations_it_created_and_no_others(
    conversation: ConversationUnderTest, tenant: TenantUnderTest
) -> None:
    alice, bob = await tenant.user(), await tenant.user()
    key = await tenant.api_key(["conversations:read", "conversations:write", "messages:write"])
    users_own = await conversation.group(alice, bob, tenant.owner)
    by_key = await conversation.stub.CreateConversation(
        pb.CreateConversationRequest(
            kind=pb.CONVERSATION_KIND_DIRECT, member_user_ids=[alice.user_id, bob.user_id]
        ),
        metadata=key.auth,
    )
    cid = by_key.conversation.conversation_id

    posted = await conversation.send(key, cid, "automated notice")
    elsewhere = await code_of(conversation.send(key, users_own.conversation_id, "sneaky"))

    assert sorted(by_key.conversation.member_user_ids) == sorted([alice.user_id, bob.user_id])
    assert (posted.message.author_kind, posted.message.author_id) == (
        pb.AUTHOR_KIND_SERVICE,
        key.user_id,
    )
    assert elsewhere == grpc.StatusCode.PERMISSION_DENIED


async def test_conversations_list_newest_first_in_pages_and_by_filter(
    conversation: ConversationUnderTest, tenant: TenantUnderTest
) -> None:
    bot = await conversation.create_bot(tenant.owner)
    alice, bob = await tenant.user(), await tenant.user()
    created = [
        (await conversation.group(alice, bob, tenant.owner)).conversation_id,
        (await conversation.assistant(alice, bot.bot_id)).conversation_id,
        (await conversation.group(alice, bob, tenant.owner, bot_id=bot.bot_id)).conversation_id,
    ]
    await conversation.stub.CloseConversation(
        pb.CloseConversationRequest(conversation_id=created[0]), metadata=alice.auth
    )

    async def listed(**fields: object) -> list[str]:
        ids: list[str] = []
        token = ""
        while True:
            page = await conversation.stub.ListConversations(
                pb.ListConversationsRequest(page_size=2, page_token=token, **fields),  # type: ignore[arg-type]
                metadata=alice.auth,
            )
            ids.extend(c.conversation_id for c in page.conversations)
            token = page.next_page_token
            if not token:
                return ids

    assert await listed() == created[::-1]
    assert await listed(bot_id=bot.bot_id) == [created[2], created[1]]
    assert await listed(member_user_id=bob.user_id) == [created[2], created[0]]
    assert await listed(state=pb.CONVERSATION_STATE_CLOSED) == [created[0]]
    assert await listed(state=pb.CONVERSATION_STATE_OPEN) == [created[2], created[1]]


async def test_group_members_come_and_go_within_three_to_a_hundred(
    conversation: ConversationUnderTest, tenant: TenantUnderTest
) -> None:
    alice, bob, carol = await tenant.user(), await tenant.user(), await tenant.user()
    group = await conversation.group(alice, bob, tenant.owner)
    cid = group.conversation_id

    added = await conversation.stub.AddMember(
        pb.AddMemberRequest(conversation_id=cid, user_id=carol.user_id), metadata=alice.auth
    )
    posted = await conversation.send(carol, cid, "thanks for having me")
    removed = await conversation.stub.RemoveMember(
        pb.RemoveMemberRequest(conversation_id=cid, user_id=carol.user_id), metadata=alice.auth
    )
    carol_again = await code_of(conversation.send(carol, cid, "still here?"))
    too_few = await code_of(
        conversation.stub.RemoveMember(
            pb.RemoveMemberRequest(conversation_id=cid, user_id=bob.user_id), metadata=alice.auth
        )
    )

    assert carol.user_id in added.conversation.member_user_ids
    assert posted.created
    assert carol.user_id not in removed.conversation.member_user_ids
    assert carol_again == grpc.StatusCode.PERMISSION_DENIED
    assert too_few == grpc.StatusCode.FAILED_PRECONDITION


async def test_only_admins_write_bots_and_an_update_changes_only_the_masked_fields(
    conversation: ConversationUnderTest, tenant: TenantUnderTest
) -> None:
    member = await tenant.user()
    denied = await code_of(
        conversation.stub.CreateBot(
            pb.CreateBotRequest(bot=pb.Bot(name="Mine", model="default")), metadata=member.auth
        )
    )
    bot = await conversation.create_bot(tenant.owner, system_prompt="Be brief.", max_tokens=200)

    changed = await conversation.stub.UpdateBot(
        pb.UpdateBotRequest(
            bot=pb.Bot(bot_id=bot.bot_id, name="Renamed", model="other", system_prompt="Be kind."),
            update_mask=FieldMask(paths=["system_prompt"]),
        ),
        metadata=tenant.owner.auth,
    )
    with pytest.raises(grpc.aio.AioRpcError) as bad_mask:
        await conversation.stub.UpdateBot(
            pb.UpdateBotRequest(
                bot=pb.Bot(bot_id=bot.bot_id, name="x", model="y"),
                update_mask=FieldMask(paths=["tenant_id"]),
            ),
            metadata=tenant.owner.auth,
        )
    read_by_member = await conversation.stub.GetBot(
        pb.GetBotRequest(bot_id=bot.bot_id), metadata=member.auth
    )

    assert denied == grpc.StatusCode.PERMISSION_DENIED
    assert (changed.bot.name, changed.bot.model) == ("Helper", "default")
    assert changed.bot.system_prompt == "Be kind." and changed.bot.max_tokens == 200
    assert bad_mask.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations_of(bad_mask.value)[0][0] == "update_mask.paths[0]"
    assert read_by_member.bot == changed.bot

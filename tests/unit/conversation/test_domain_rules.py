"""The conversation domain's rules: status order, who a conversation holds, what a bot sees."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from conversation.domain import (
    Actor,
    ActorKind,
    AuthorKind,
    Bot,
    ChannelContact,
    ConversationKind,
    HistoryWindow,
    Message,
    MessageStatus,
    build_prompt,
    may_access,
    moves_forward,
    plan_members,
)
from conversation.errors import InvalidFieldError

NOW = datetime(2026, 1, 1, tzinfo=UTC)
S = MessageStatus
ALICE = Actor(tenant_id="t", kind=ActorKind.USER, subject="alice")


@pytest.mark.parametrize(
    ("current", "new", "allowed"),
    [
        (S.ACCEPTED, S.SENT, True),
        (S.SENT, S.DELIVERED, True),
        (S.DELIVERED, S.READ, True),
        (S.ACCEPTED, S.READ, True),  # a skipped step is still forward
        (S.SENT, S.FAILED, True),
        (S.READ, S.DELIVERED, False),
        (S.DELIVERED, S.SENT, False),
        (S.READ, S.READ, False),
        (S.DELIVERED, S.FAILED, False),  # delivered cannot fail any more
        (S.FAILED, S.READ, False),
        (S.FAILED, S.SENT, False),
    ],
)
def test_a_status_only_moves_forward(current: S, new: S, allowed: bool) -> None:
    assert moves_forward(current, new) is allowed


def test_the_calling_user_joins_and_duplicates_collapse() -> None:
    members = plan_members(
        ALICE,
        kind=ConversationKind.GROUP,
        member_user_ids=["bob", "carol", "alice"],
        bot_id=None,
        channel_contact=None,
    )
    assert members == ("alice", "bob", "carol")


@pytest.mark.parametrize(
    ("kind", "others", "bot", "field"),
    [
        (ConversationKind.ASSISTANT, [], None, "bot_id"),
        (ConversationKind.ASSISTANT, ["bob"], "b", "member_user_ids"),
        (ConversationKind.DIRECT, ["bob"], "b", "bot_id"),
        (ConversationKind.DIRECT, ["bob", "carol"], None, "member_user_ids"),
        (ConversationKind.GROUP, ["bob"], None, "member_user_ids"),
        (ConversationKind.GROUP, [f"u{n}" for n in range(100)], None, "member_user_ids"),
        (ConversationKind.CHANNEL, [], "b", "channel_contact"),
    ],
)
def test_each_kind_refuses_the_wrong_members_or_bot(
    kind: ConversationKind, others: list[str], bot: str | None, field: str
) -> None:
    with pytest.raises(InvalidFieldError) as raised:
        plan_members(ALICE, kind=kind, member_user_ids=others, bot_id=bot, channel_contact=None)
    assert raised.value.field == field


def test_a_channel_conversation_has_no_members_and_an_api_key_does_not_join() -> None:
    key = Actor(tenant_id="t", kind=ActorKind.API_KEY, subject="key-1")
    contact = ChannelContact(channel_id="c", external_contact_id="x")
    assert (
        plan_members(
            ALICE,
            kind=ConversationKind.CHANNEL,
            member_user_ids=[],
            bot_id="b",
            channel_contact=contact,
        )
        == ()
    )
    assert plan_members(
        key,
        kind=ConversationKind.DIRECT,
        member_user_ids=["a", "b"],
        bot_id=None,
        channel_contact=None,
    ) == ("a", "b")


def test_access_is_for_members_tenant_wide_actors_and_the_key_that_created_it() -> None:
    admin = Actor(tenant_id="t", kind=ActorKind.USER, subject="root", tenant_wide=True)
    key = Actor(tenant_id="t", kind=ActorKind.API_KEY, subject="key-1")
    assert may_access(ALICE, created_by="x", is_member=True)
    assert not may_access(ALICE, created_by="alice", is_member=False)  # users need membership
    assert may_access(admin, created_by="x", is_member=False)
    assert may_access(key, created_by="key-1", is_member=False)
    assert not may_access(key, created_by="key-2", is_member=False)


def _bot(window: HistoryWindow, prompt: str = "Be brief.") -> Bot:
    return Bot(
        bot_id="b",
        tenant_id="t",
        name="n",
        system_prompt=prompt,
        model="default",
        temperature=None,
        top_p=None,
        max_tokens=None,
        history=window,
        created_at=NOW,
        updated_at=NOW,
    )


def _message(
    sequence: int,
    text: str,
    author: AuthorKind = AuthorKind.USER,
    status: MessageStatus = MessageStatus.ACCEPTED,
) -> Message:
    return Message(
        message_id=f"m{sequence}",
        conversation_id="c",
        tenant_id="t",
        sequence=sequence,
        client_message_id=f"k{sequence}",
        author_kind=author,
        author_id="a",
        text=text,
        status=status,
        created_at=NOW,
        updated_at=NOW,
    )


def test_the_prompt_is_the_system_prompt_then_the_last_messages_by_role() -> None:
    history = [
        _message(1, "hi"),
        _message(2, "hello!", AuthorKind.BOT),
        _message(3, "sorry", AuthorKind.BOT, MessageStatus.FAILED),
        _message(4, "how are you?"),
    ]
    prompt = build_prompt(_bot(HistoryWindow(max_messages=2)), history)
    assert [(t.role, t.content) for t in prompt.turns] == [
        ("system", "Be brief."),
        ("assistant", "hello!"),  # the failed reply is left out
        ("user", "how are you?"),
    ]


def test_a_token_budget_keeps_the_newest_messages_that_fit_and_always_the_last() -> None:
    history = [_message(1, "a" * 400), _message(2, "b" * 40), _message(3, "c" * 40)]
    within = build_prompt(_bot(HistoryWindow(max_tokens=25), prompt=""), history)
    tiny = build_prompt(_bot(HistoryWindow(max_tokens=1), prompt=""), history)
    assert [t.content[0] for t in within.turns] == ["b", "c"]
    assert [t.content[0] for t in tiny.turns] == ["c"]


def test_without_a_window_the_bot_sees_the_last_twenty_messages() -> None:
    history = [_message(n, f"m{n}") for n in range(1, 31)]
    prompt = build_prompt(_bot(HistoryWindow()), history)
    assert [t.content for t in prompt.turns[1:]] == [f"m{n}" for n in range(11, 31)]

"""The conversation domain: bots, conversations, messages and the rules that govern them.

Plain dataclasses and functions: no gRPC, no database, no generated protobuf code. The enum
numbers equal those of `switchboard.conversation.v1` (a unit test keeps them in step).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from conversation.errors import InvalidFieldError

#: A bot's history window when it names no message count.
DEFAULT_HISTORY_MESSAGES: Final = 20
#: How many users a group conversation holds.
GROUP_MIN_USERS: Final = 3
GROUP_MAX_USERS: Final = 100


class ConversationKind(enum.IntEnum):
    ASSISTANT = 1
    DIRECT = 2
    GROUP = 3
    CHANNEL = 4


class MessageStatus(enum.IntEnum):
    ACCEPTED = 1
    SENT = 2
    DELIVERED = 3
    READ = 4
    FAILED = 5


class AuthorKind(enum.IntEnum):
    USER = 1
    BOT = 2
    CONTACT = 3
    SERVICE = 4


# accepted → sent → delivered → read; failed is final and only reachable before delivery.
_FORWARD: Final[dict[MessageStatus, frozenset[MessageStatus]]] = {
    MessageStatus.ACCEPTED: frozenset(
        {MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ, MessageStatus.FAILED}
    ),
    MessageStatus.SENT: frozenset(
        {MessageStatus.DELIVERED, MessageStatus.READ, MessageStatus.FAILED}
    ),
    MessageStatus.DELIVERED: frozenset({MessageStatus.READ}),
    MessageStatus.READ: frozenset(),
    MessageStatus.FAILED: frozenset(),
}


def moves_forward(current: MessageStatus, new: MessageStatus) -> bool:
    """Whether a message in status `current` may move to `new` (never back, never sideways)."""
    return new in _FORWARD[current]


@dataclass(frozen=True, slots=True)
class HistoryWindow:
    """How much earlier conversation a bot sees: the last `max_messages` (0: the default),
    within about `max_tokens` tokens (0: no budget)."""

    max_messages: int = 0
    max_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Bot:
    bot_id: str
    tenant_id: str
    name: str
    system_prompt: str
    model: str
    temperature: float | None
    top_p: float | None
    max_tokens: int | None
    history: HistoryWindow
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ChannelContact:
    channel_id: str
    external_contact_id: str
    display_name: str = ""


@dataclass(frozen=True, slots=True)
class Conversation:
    conversation_id: str
    tenant_id: str
    kind: ConversationKind
    title: str
    bot_id: str | None
    member_user_ids: tuple[str, ...]
    channel_contact: ChannelContact | None
    created_by: str
    last_sequence: int
    created_at: datetime
    closed_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


@dataclass(frozen=True, slots=True)
class Message:
    message_id: str
    conversation_id: str
    tenant_id: str
    sequence: int
    client_message_id: str
    author_kind: AuthorKind
    author_id: str
    text: str
    status: MessageStatus
    created_at: datetime
    updated_at: datetime
    failure_reason: str = ""
    reply_to_message_id: str | None = None
    platform_message_id: str = ""


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message about to be appended: everything but its sequence number."""

    message_id: str
    conversation_id: str
    tenant_id: str
    client_message_id: str
    author_kind: AuthorKind
    author_id: str
    text: str
    created_at: datetime
    status: MessageStatus = MessageStatus.ACCEPTED
    failure_reason: str = ""
    reply_to_message_id: str | None = None
    platform_message_id: str = ""
    #: Set for messages a channel contact wrote (de-duplicated per channel).
    inbound_channel_id: str | None = None

    def stored(self, sequence: int) -> Message:
        return Message(
            message_id=self.message_id,
            conversation_id=self.conversation_id,
            tenant_id=self.tenant_id,
            sequence=sequence,
            client_message_id=self.client_message_id,
            author_kind=self.author_kind,
            author_id=self.author_id,
            text=self.text,
            status=self.status,
            created_at=self.created_at,
            updated_at=self.created_at,
            failure_reason=self.failure_reason,
            reply_to_message_id=self.reply_to_message_id,
            platform_message_id=self.platform_message_id,
        )


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A message's status moved forward."""

    conversation_id: str
    message_id: str
    status: MessageStatus
    previous_status: MessageStatus
    failure_reason: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ReplyDelta:
    """A piece of a bot reply being generated."""

    conversation_id: str
    reply_to_message_id: str
    reply_message_id: str
    index: int
    text: str


@dataclass(frozen=True, slots=True)
class ConversationClosed:
    """A conversation was closed (a live signal; the conversation itself is re-read)."""

    conversation_id: str


#: What a watcher of a conversation is told, live.
LiveEvent = Message | StatusChange | ReplyDelta | ConversationClosed


# -- who is acting --------------------------------------------------------------------------


class ActorKind(enum.StrEnum):
    USER = "user"
    API_KEY = "api_key"
    SERVICE = "service"
    #: This service itself, acting on an event (an inbound message, a delivery update).
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting, for which tenant, and whether they reach every conversation in it."""

    tenant_id: str
    kind: ActorKind
    subject: str
    #: Tenant admins and owners, services and the system read and post everywhere.
    tenant_wide: bool = False

    @property
    def user_id(self) -> str | None:
        return self.subject if self.kind is ActorKind.USER else None

    @property
    def author_kind(self) -> AuthorKind:
        return AuthorKind.USER if self.kind is ActorKind.USER else AuthorKind.SERVICE


def may_access(actor: Actor, *, created_by: str, is_member: bool) -> bool:
    """Members read and post; tenant-wide actors everywhere; an API key where it created."""
    if actor.tenant_wide or is_member:
        return True
    return actor.kind is ActorKind.API_KEY and created_by == actor.subject


# -- creating conversations ------------------------------------------------------------------


def plan_members(
    actor: Actor,
    *,
    kind: ConversationKind,
    member_user_ids: Sequence[str],
    bot_id: str | None,
    channel_contact: ChannelContact | None,
) -> tuple[str, ...]:
    """The member user ids of a new conversation, or InvalidFieldError naming the bad field.

    The calling user is added to every conversation but a channel one.
    """
    if kind is ConversationKind.CHANNEL:
        if channel_contact is None:
            raise InvalidFieldError("channel_contact", "is required for channel conversations")
        if member_user_ids:
            raise InvalidFieldError("member_user_ids", "channel conversations have no members")
        if bot_id is None:
            raise InvalidFieldError("bot_id", "is required for channel conversations")
        return ()
    if channel_contact is not None:
        raise InvalidFieldError("channel_contact", "is only for channel conversations")
    members = list(dict.fromkeys([*([actor.user_id] if actor.user_id else []), *member_user_ids]))
    count = len(members)
    if kind is ConversationKind.ASSISTANT:
        if bot_id is None:
            raise InvalidFieldError("bot_id", "is required for assistant conversations")
        if count != 1:
            raise InvalidFieldError("member_user_ids", "an assistant conversation has one user")
    elif kind is ConversationKind.DIRECT:
        if bot_id is not None:
            raise InvalidFieldError("bot_id", "direct conversations have no bot")
        if count != 2:
            raise InvalidFieldError("member_user_ids", "a direct conversation has two users")
    elif not GROUP_MIN_USERS <= count <= GROUP_MAX_USERS:
        raise InvalidFieldError(
            "member_user_ids",
            f"a group has {GROUP_MIN_USERS} to {GROUP_MAX_USERS} users (the caller included)",
        )
    return tuple(members)


# -- bot prompts -----------------------------------------------------------------------------

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class PromptTurn:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class Prompt:
    model: str
    turns: tuple[PromptTurn, ...]
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None


def estimate_tokens(text: str) -> int:
    """About how many tokens `text` is (4 characters a token, the usual rule of thumb)."""
    return max(1, (len(text) + 3) // 4)


def history_limit(window: HistoryWindow) -> int:
    return window.max_messages or DEFAULT_HISTORY_MESSAGES


def build_prompt(bot: Bot, history: Sequence[Message]) -> Prompt:
    """The bot's prompt: its system prompt, then the history window, oldest first.

    `history` is oldest first and ends with the message being replied to, which is always
    kept. Failed replies are left out: the model should not imitate an error.
    """
    usable = [
        message
        for message in history
        if message.text
        and not (message.author_kind is AuthorKind.BOT and message.status is MessageStatus.FAILED)
    ]
    window = usable[-history_limit(bot.history) :]
    if bot.history.max_tokens and window:
        kept = [window[-1]]
        budget = bot.history.max_tokens - estimate_tokens(window[-1].text)
        for message in reversed(window[:-1]):
            cost = estimate_tokens(message.text)
            if cost > budget:
                break
            kept.append(message)
            budget -= cost
        window = list(reversed(kept))
    turns = [PromptTurn("system", bot.system_prompt)] if bot.system_prompt else []
    turns.extend(
        PromptTurn("assistant" if message.author_kind is AuthorKind.BOT else "user", message.text)
        for message in window
    )
    return Prompt(
        model=bot.model,
        turns=tuple(turns),
        temperature=bot.temperature,
        top_p=bot.top_p,
        max_tokens=bot.max_tokens,
    )

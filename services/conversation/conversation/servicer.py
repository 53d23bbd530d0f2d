"""ConversationService over gRPC: converts protos to use-case calls and errors to statuses."""

from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import grpc

from conversation.access import actor_of
from conversation.bots import Bots
from conversation.conversations import Conversations
from conversation.conversations_store import ConversationFilter
from conversation.domain import (
    Actor,
    Conversation,
    ConversationKind,
    Message,
    MessageStatus,
    ReplyDelta,
    StatusChange,
)
from conversation.errors import (
    AlreadyExistsError,
    ConversationError,
    FailedPreconditionError,
    ForbiddenError,
    InvalidFieldError,
    NotFoundError,
)
from conversation.messages import Messages
from conversation.proto_mapping import (
    BOT_MASK_FIELDS,
    bot_pb,
    bot_settings,
    channel_contact_of,
    conversation_pb,
    message_pb,
    reply_delta_pb,
    status_change_pb,
)
from conversation.replies import ReplyCompleted
from conversation.request_decoding import UndecodableRequest
from conversation.watch import Watches
from switchboard.conversation.v1 import conversation_pb2 as pb
from switchboard.conversation.v1 import conversation_pb2_grpc
from switchboard_runtime.grpc_errors import abort_with_field_violations
from switchboard_runtime.pagination import InvalidPageTokenError
from switchboard_runtime.principal import current_principal

Context = grpc.aio.ServicerContext[Any, Any]
Response = TypeVar("Response")

_STATUS_OF: dict[type[ConversationError], grpc.StatusCode] = {
    NotFoundError: grpc.StatusCode.NOT_FOUND,
    ForbiddenError: grpc.StatusCode.PERMISSION_DENIED,
    AlreadyExistsError: grpc.StatusCode.ALREADY_EXISTS,
    FailedPreconditionError: grpc.StatusCode.FAILED_PRECONDITION,
}


async def _abort(context: Context, error: Exception) -> NoReturn:
    if isinstance(error, InvalidFieldError):
        await abort_with_field_violations(context, [(error.field, error.description)])
    if isinstance(error, InvalidPageTokenError):
        await abort_with_field_violations(context, [("page_token", str(error))])
    code = next(code for kind, code in _STATUS_OF.items() if isinstance(error, kind))
    await context.abort(code, str(error))
    raise AssertionError("unreachable: context.abort raises")


_EXPECTED = (ConversationError, InvalidPageTokenError)


async def _reject_undecodable(request: object, context: Context) -> None:
    if isinstance(request, UndecodableRequest):
        await abort_with_field_violations(context, request.violations)


def maps_errors(
    handler: Callable[[Any, Any, Context], Awaitable[Response]],
) -> Callable[[Any, Any, Context], Awaitable[Response]]:
    """Turn the use cases' expected errors into gRPC statuses, in one place."""

    @functools.wraps(handler)
    async def mapped(self: Any, request: Any, context: Context) -> Response:
        await _reject_undecodable(request, context)
        try:
            return await handler(self, request, context)
        except _EXPECTED as error:
            await _abort(context, error)

    return mapped


def maps_stream_errors(
    handler: Callable[[Any, Any, Context], AsyncGenerator[Response, None]],
) -> Callable[[Any, Any, Context], AsyncGenerator[Response, None]]:
    """`maps_errors` for server-streaming handlers."""

    @functools.wraps(handler)
    async def mapped(self: Any, request: Any, context: Context) -> AsyncGenerator[Response, None]:
        await _reject_undecodable(request, context)
        try:
            async with contextlib.aclosing(handler(self, request, context)) as responses:
                async for response in responses:
                    yield response
        except _EXPECTED as error:
            await _abort(context, error)

    return mapped


def _actor() -> Actor:
    return actor_of(current_principal())


class ConversationServicer(conversation_pb2_grpc.ConversationServiceServicer):
    def __init__(
        self,
        *,
        bots: Bots,
        conversations: Conversations,
        messages: Messages,
        watches: Watches,
    ) -> None:
        self._bots = bots
        self._conversations = conversations
        self._messages = messages
        self._watches = watches

    # -- bots -----------------------------------------------------------------------------

    @maps_errors
    async def CreateBot(
        self, request: pb.CreateBotRequest, context: Context
    ) -> pb.CreateBotResponse:
        bot = await self._bots.create(_actor(), bot_settings(request.bot))
        return pb.CreateBotResponse(bot=bot_pb(bot))

    @maps_errors
    async def GetBot(self, request: pb.GetBotRequest, context: Context) -> pb.GetBotResponse:
        return pb.GetBotResponse(bot=bot_pb(await self._bots.get(_actor(), request.bot_id)))

    @maps_errors
    async def ListBots(self, request: pb.ListBotsRequest, context: Context) -> pb.ListBotsResponse:
        bots, next_token = await self._bots.list(
            _actor(), size=request.page_size, token=request.page_token
        )
        return pb.ListBotsResponse(bots=[bot_pb(bot) for bot in bots], next_page_token=next_token)

    @maps_errors
    async def UpdateBot(
        self, request: pb.UpdateBotRequest, context: Context
    ) -> pb.UpdateBotResponse:
        try:
            bot_id = str(uuid.UUID(request.bot.bot_id))
        except ValueError:
            raise InvalidFieldError("bot.bot_id", "must be the UUID of the bot to change") from None
        paths = list(request.update_mask.paths)
        if not paths:
            raise InvalidFieldError("update_mask", "name at least one field to change")
        settings = bot_settings(request.bot)
        changes: dict[str, object] = {}
        for index, path in enumerate(paths):
            name = BOT_MASK_FIELDS.get(path)
            if name is None:
                raise InvalidFieldError(
                    f"update_mask.paths[{index}]", f"{path!r} cannot be changed"
                )
            changes[name] = settings[name]
        bot = await self._bots.update(_actor(), bot_id, changes)
        return pb.UpdateBotResponse(bot=bot_pb(bot))

    @maps_errors
    async def DeleteBot(
        self, request: pb.DeleteBotRequest, context: Context
    ) -> pb.DeleteBotResponse:
        await self._bots.delete(_actor(), request.bot_id)
        return pb.DeleteBotResponse()

    # -- conversations --------------------------------------------------------------------

    @maps_errors
    async def CreateConversation(
        self, request: pb.CreateConversationRequest, context: Context
    ) -> pb.CreateConversationResponse:
        conversation = await self._conversations.create(
            _actor(),
            kind=ConversationKind(request.kind),
            title=request.title,
            bot_id=request.bot_id or None,
            member_user_ids=list(request.member_user_ids),
            channel_contact=(
                channel_contact_of(request.channel_contact)
                if request.HasField("channel_contact")
                else None
            ),
        )
        return pb.CreateConversationResponse(conversation=conversation_pb(conversation))

    @maps_errors
    async def GetConversation(
        self, request: pb.GetConversationRequest, context: Context
    ) -> pb.GetConversationResponse:
        conversation = await self._conversations.get(_actor(), request.conversation_id)
        return pb.GetConversationResponse(conversation=conversation_pb(conversation))

    @maps_errors
    async def ListConversations(
        self, request: pb.ListConversationsRequest, context: Context
    ) -> pb.ListConversationsResponse:
        state = request.state
        where = ConversationFilter(
            member_user_id=request.member_user_id or None,
            bot_id=request.bot_id or None,
            channel_id=request.channel_id or None,
            open=None
            if state == pb.CONVERSATION_STATE_UNSPECIFIED
            else state == pb.CONVERSATION_STATE_OPEN,
        )
        found, next_token = await self._conversations.list(
            _actor(), where, size=request.page_size, token=request.page_token
        )
        return pb.ListConversationsResponse(
            conversations=[conversation_pb(conversation) for conversation in found],
            next_page_token=next_token,
        )

    @maps_errors
    async def CloseConversation(
        self, request: pb.CloseConversationRequest, context: Context
    ) -> pb.CloseConversationResponse:
        conversation = await self._conversations.close(_actor(), request.conversation_id)
        return pb.CloseConversationResponse(conversation=conversation_pb(conversation))

    @maps_errors
    async def AddMember(
        self, request: pb.AddMemberRequest, context: Context
    ) -> pb.AddMemberResponse:
        conversation = await self._conversations.add_member(
            _actor(), request.conversation_id, request.user_id
        )
        return pb.AddMemberResponse(conversation=conversation_pb(conversation))

    @maps_errors
    async def RemoveMember(
        self, request: pb.RemoveMemberRequest, context: Context
    ) -> pb.RemoveMemberResponse:
        conversation = await self._conversations.remove_member(
            _actor(), request.conversation_id, request.user_id
        )
        return pb.RemoveMemberResponse(conversation=conversation_pb(conversation))

    # -- messages -------------------------------------------------------------------------

    @maps_errors
    async def SendMessage(
        self, request: pb.SendMessageRequest, context: Context
    ) -> pb.SendMessageResponse:
        posted = await self._messages.send(
            _actor(),
            request.conversation_id,
            client_message_id=request.client_message_id,
            text=request.text,
        )
        return pb.SendMessageResponse(message=message_pb(posted.message), created=posted.created)

    @maps_stream_errors
    async def SendAndStreamReply(
        self, request: pb.SendAndStreamReplyRequest, context: Context
    ) -> AsyncGenerator[pb.SendAndStreamReplyResponse, None]:
        events = self._messages.send_and_stream(
            _actor(),
            request.conversation_id,
            client_message_id=request.client_message_id,
            text=request.text,
        )
        async with contextlib.aclosing(events):
            async for event in events:
                if isinstance(event, Message):
                    yield pb.SendAndStreamReplyResponse(message_accepted=message_pb(event))
                elif isinstance(event, ReplyDelta):
                    yield pb.SendAndStreamReplyResponse(reply_delta=reply_delta_pb(event))
                elif isinstance(event, ReplyCompleted) and event.message is not None:
                    yield pb.SendAndStreamReplyResponse(reply_completed=message_pb(event.message))

    @maps_errors
    async def GetMessage(
        self, request: pb.GetMessageRequest, context: Context
    ) -> pb.GetMessageResponse:
        message = await self._messages.get(_actor(), request.conversation_id, request.message_id)
        return pb.GetMessageResponse(message=message_pb(message))

    @maps_errors
    async def ListMessages(
        self, request: pb.ListMessagesRequest, context: Context
    ) -> pb.ListMessagesResponse:
        messages, next_token, previous_token = await self._messages.list(
            _actor(),
            request.conversation_id,
            size=request.page_size,
            token=request.page_token,
            newest_first=request.newest_first,
        )
        return pb.ListMessagesResponse(
            messages=[message_pb(message) for message in messages],
            next_page_token=next_token,
            previous_page_token=previous_token,
        )

    @maps_errors
    async def UpdateMessageStatus(
        self, request: pb.UpdateMessageStatusRequest, context: Context
    ) -> pb.UpdateMessageStatusResponse:
        message = await self._messages.update_status(
            _actor(),
            request.conversation_id,
            request.message_id,
            MessageStatus(request.status),
            failure_reason=request.failure_reason,
        )
        return pb.UpdateMessageStatusResponse(message=message_pb(message))

    @maps_stream_errors
    async def WatchConversation(
        self, request: pb.WatchConversationRequest, context: Context
    ) -> AsyncGenerator[pb.WatchConversationResponse, None]:
        events = self._watches.watch(
            _actor(), request.conversation_id, after_sequence=request.after_sequence
        )
        async with contextlib.aclosing(events):
            async for event in events:
                if isinstance(event, Message):
                    yield pb.WatchConversationResponse(message_created=message_pb(event))
                elif isinstance(event, StatusChange):
                    yield pb.WatchConversationResponse(status_changed=status_change_pb(event))
                elif isinstance(event, ReplyDelta):
                    yield pb.WatchConversationResponse(reply_delta=reply_delta_pb(event))
                elif isinstance(event, Conversation):
                    yield pb.WatchConversationResponse(conversation_closed=conversation_pb(event))

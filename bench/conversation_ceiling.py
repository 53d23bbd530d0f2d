"""The raw ceiling for `conversation_bench.py`: a bare grpc.aio SendMessage handler.

No interceptors, no authentication, no validation, no idempotency check, no outbox relay:
one transaction per call that bumps the conversation's sequence, inserts the message and
inserts its event into the outbox, on the conversation service's own schema. What the real
service does on top of this is what the benchmark measures.

    python bench/conversation_ceiling.py DSN PORT
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

import grpc
import grpc.aio
from google.protobuf.timestamp_pb2 import Timestamp

from conversation.main import MIGRATIONS
from switchboard.conversation.v1 import conversation_pb2 as pb
from switchboard.conversation.v1 import events_pb2
from switchboard_runtime.postgres import apply_migrations, create_pool

POOL_SIZE = 20
METHOD = "/switchboard.conversation.v1.ConversationService/SendMessage"


async def serve(dsn: str, port: int) -> None:
    pool = await create_pool(dsn, max_size=POOL_SIZE)
    await apply_migrations(pool, MIGRATIONS)

    async def send(request: pb.SendMessageRequest, context: Any) -> pb.SendMessageResponse:
        now = datetime.now(UTC)
        stamp = Timestamp()
        stamp.FromDatetime(now)
        message_id = str(uuid.uuid4())
        async with pool.acquire() as conn, conn.transaction():
            sequence = await conn.fetchval(
                "UPDATE conversations SET last_sequence = last_sequence + 1"
                " WHERE conversation_id = $1 RETURNING last_sequence",
                request.conversation_id,
            )
            await conn.execute(
                "INSERT INTO messages (message_id, conversation_id, tenant_id, sequence,"
                " client_message_id, author_kind, author_id, text, status, created_at,"
                " updated_at) SELECT $1, $2, tenant_id, $3, $4, 1, 'bench', $5, 1, $6, $6"
                " FROM conversations WHERE conversation_id = $2",
                message_id,
                request.conversation_id,
                sequence,
                request.client_message_id,
                request.text,
                now,
            )
            message = pb.Message(
                message_id=message_id,
                conversation_id=request.conversation_id,
                sequence=sequence,
                client_message_id=request.client_message_id,
                text=request.text,
                create_time=stamp,
            )
            event_id = str(uuid.uuid4())
            event = events_pb2.MessageCreatedEvent(event_id=event_id, message=message)
            await conn.execute(
                "INSERT INTO event_outbox (event_id, subject, payload) VALUES ($1, $2, $3)",
                event_id,
                f"conversation.v1.message_created.{request.conversation_id}",
                event.SerializeToString(),
            )
        return pb.SendMessageResponse(message=message, created=True)

    handler = grpc.method_handlers_generic_handler(
        "switchboard.conversation.v1.ConversationService",
        {
            "SendMessage": grpc.unary_unary_rpc_method_handler(
                send,
                request_deserializer=pb.SendMessageRequest.FromString,
                response_serializer=pb.SendMessageResponse.SerializeToString,
            )
        },
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("serving", flush=True)
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], int(sys.argv[2])))

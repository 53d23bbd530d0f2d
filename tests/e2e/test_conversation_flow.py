"""The user's whole journey through the edge: sign up, sign in, make a bot, talk to it with
the reply streamed token by token, read the conversation back — over JSON, gRPC-Web and
gRPC — and the OpenAI SDK pointed at the edge."""

from __future__ import annotations

import json
import uuid
from typing import Any

import grpc
import httpx
import openai
import pytest

from switchboard.conversation.v1 import conversation_pb2, conversation_pb2_grpc
from switchboard_devstack.stack import Stack
from tests.e2e.edge import (
    bearer,
    grpc_web_frame,
    grpc_web_messages,
    grpcurl,
    server_sent_events,
    sign_up,
)

PASSWORD = "correct horse battery staple"


async def _bot_and_conversation(edge: httpx.AsyncClient, token: str) -> tuple[str, str]:
    bot = await edge.post(
        "/v1/bots",
        headers=bearer(token),
        json={"name": "Helper", "system_prompt": "You are terse.", "model": "default"},
    )
    assert bot.status_code == 200, bot.text
    bot_id = bot.json()["bot"]["bot_id"]
    conversation = await edge.post(
        "/v1/conversations",
        headers=bearer(token),
        json={"kind": "CONVERSATION_KIND_ASSISTANT", "bot_id": bot_id, "title": "Chat"},
    )
    assert conversation.status_code == 200, conversation.text
    return bot_id, conversation.json()["conversation"]["conversation_id"]


async def test_sign_up_to_a_streamed_bot_reply_over_json(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.edge_url, timeout=60) as edge:
        signed_up = await sign_up(edge)
        slug = signed_up["tenant"]["slug"]
        login = await edge.post(
            "/v1/auth/login",
            json={"tenant_slug": slug, "email": f"owner@{slug}.test", "password": PASSWORD},
        )
        token = login.json()["tokens"]["access_token"]
        _, conversation_id = await _bot_and_conversation(edge, token)

        async with edge.stream(
            "POST",
            f"/v1/conversations/{conversation_id}/messages:stream",
            headers=bearer(token),
            json={"client_message_id": "first", "text": "hello bot"},
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = server_sent_events((await response.aread()).decode())
        accepted = events[0]["message_accepted"]
        deltas = [e["reply_delta"]["text"] for e in events if "reply_delta" in e]
        completed = events[-1]["reply_completed"]
        assert accepted["text"] == "hello bot"
        assert deltas, "the reply was not streamed"
        assert "".join(deltas) == completed["text"]
        assert completed["status"] == "MESSAGE_STATUS_ACCEPTED"

        listed = await edge.get(
            f"/v1/conversations/{conversation_id}/messages", headers=bearer(token)
        )
        assert listed.status_code == 200
        messages = listed.json()["messages"]
        assert [m["sequence"] for m in messages] == ["1", "2"]  # int64 as JSON strings
        assert messages[1]["text"] == completed["text"]


async def test_the_same_conversation_over_grpc_web_and_grpcurl(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.edge_url, timeout=60) as edge:
        token = (await sign_up(edge))["tokens"]["access_token"]
        _, conversation_id = await _bot_and_conversation(edge, token)
        request = conversation_pb2.SendMessageRequest(
            conversation_id=conversation_id, client_message_id=uuid.uuid4().hex, text="via web"
        )
        response = await edge.post(
            "/switchboard.conversation.v1.ConversationService/SendMessage",
            content=grpc_web_frame(request),
            headers={"content-type": "application/grpc-web+proto", **bearer(token)},
        )
    messages, trailers = grpc_web_messages(response.content)
    assert trailers["grpc-status"] == "0"
    sent = conversation_pb2.SendMessageResponse.FromString(messages[0])
    assert sent.message.text == "via web" and sent.created

    edge_address = stack.edge_url.removeprefix("http://")
    again = grpcurl(
        "-H",
        f"authorization: Bearer {token}",
        "-d",
        json.dumps(
            {
                "conversation_id": conversation_id,
                "client_message_id": request.client_message_id,
                "text": "via web",
            }
        ),
        edge_address,
        "switchboard.conversation.v1.ConversationService/SendMessage",
    )
    replay: dict[str, Any] = json.loads(again.stdout)
    assert replay["message"]["message_id"] == sent.message.message_id
    assert replay.get("created", False) is False  # the same client id stores nothing new

    async with grpc.aio.insecure_channel(edge_address) as channel:
        stub = conversation_pb2_grpc.ConversationServiceStub(channel)
        listed = await stub.ListMessages(
            conversation_pb2.ListMessagesRequest(conversation_id=conversation_id),
            metadata=(("authorization", f"Bearer {token}"),),
        )
    assert listed.messages[0].message_id == sent.message.message_id


async def test_the_openai_sdk_pointed_at_the_edge_completes_a_chat(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.edge_url, timeout=60) as edge:
        token = (await sign_up(edge))["tokens"]["access_token"]
        key = await edge.post(
            "/v1/api-keys",
            headers=bearer(token),
            json={"name": "sdk", "scopes": ["llm:complete", "llm:read"]},
        )
        secret = key.json()["secret"]
    client = openai.AsyncOpenAI(base_url=f"{stack.edge_url}/v1", api_key=secret, max_retries=0)
    try:
        models = [model.id async for model in client.models.list()]
        assert "default" in models
        answer = await client.chat.completions.create(
            model="default", messages=[{"role": "user", "content": "Say hi"}]
        )
        text = answer.choices[0].message.content
        assert text
        assert answer.usage is not None and answer.usage.completion_tokens > 0
        stream = await client.chat.completions.create(
            model="default", messages=[{"role": "user", "content": "Say hi"}], stream=True
        )
        pieces = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
        assert "".join(pieces) == text  # the mock model answers the same prompt the same way
        async with openai.AsyncOpenAI(
            base_url=f"{stack.edge_url}/v1", api_key="sbk_wrong", max_retries=0
        ) as stranger:
            with pytest.raises(openai.AuthenticationError):
                await stranger.models.list()
    finally:
        await client.close()

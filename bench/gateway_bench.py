"""Gateway benchmark: what the Envoy edge and the gateway add to a send.

One run, side by side, against the real stack (real Postgres, every service a process of its
own, all on this machine's cores): a SendMessage through Envoy as JSON, through Envoy as gRPC,
and straight to the conversation service. Each worker sends to a conversation of its own, so
the per-conversation sequence lock does not dominate. Two measurements per path:

- closed loop at concurrency 32: throughput, and latency that on a small machine is mostly
  queueing behind the busiest process;
- paced at a steady rate every path sustains (up to 32 in flight): what a call costs when
  nothing is saturated — the added latency the goal is about.

Prints one JSON object last.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from typing import Any

import grpc
import httpx

from bench.load import closed_loop, paced
from bench.stack_harness import running_stack
from switchboard.conversation.v1 import conversation_pb2, conversation_pb2_grpc

CONCURRENCY = 32
CALLS = 3000
MAX_SECONDS = 30.0
WARMUP = 200
PACED_RATE = 100.0
PACED_CALLS = 1500
PASSWORD = "benchmark password 123"
# Rate limits high enough that the benchmark measures the path, not the buckets.
GATEWAY_ENV = {
    name: "100000:100000"
    for name in (
        "RATE_LIMIT_READ",
        "RATE_LIMIT_WRITE",
        "RATE_LIMIT_AUTH",
        "RATE_LIMIT_GENERATION",
    )
}


async def _set_up(edge: httpx.AsyncClient) -> tuple[str, list[str]]:
    slug = f"bench-{uuid.uuid4().hex[:8]}"
    signed_up = (
        await edge.post(
            "/v1/auth/signup",
            json={
                "tenant_name": "Bench",
                "tenant_slug": slug,
                "email": f"o@{slug}.test",
                "password": PASSWORD,
                "display_name": "Owner",
            },
        )
    ).json()
    token = signed_up["tokens"]["access_token"]
    headers = {"authorization": f"Bearer {token}"}
    peer = (
        await edge.post(
            "/v1/users",
            headers=headers,
            json={
                "email": f"peer@{slug}.test",
                "password": PASSWORD,
                "display_name": "Peer",
                "role": "ROLE_MEMBER",
            },
        )
    ).json()["user"]["user_id"]
    conversations = []
    for _ in range(CONCURRENCY):
        created = await edge.post(
            "/v1/conversations",
            headers=headers,
            json={
                "kind": "CONVERSATION_KIND_DIRECT",
                "member_user_ids": [peer],
            },
        )
        created.raise_for_status()
        conversations.append(created.json()["conversation"]["conversation_id"])
    return token, conversations


def _send_request(conversation_id: str) -> conversation_pb2.SendMessageRequest:
    return conversation_pb2.SendMessageRequest(
        conversation_id=conversation_id, client_message_id=uuid.uuid4().hex, text="hello there"
    )


async def _measure(call: Any) -> dict[str, Any]:
    await closed_loop(call, concurrency=CONCURRENCY, total_calls=WARMUP, max_seconds=MAX_SECONDS)
    saturated = await closed_loop(
        call, concurrency=CONCURRENCY, total_calls=CALLS, max_seconds=MAX_SECONDS
    )
    steady = await paced(
        call, rate_per_s=PACED_RATE, total_calls=PACED_CALLS, max_in_flight=CONCURRENCY
    )
    return {"closed_loop_c32": saturated, "paced": steady}


async def main() -> None:
    with running_stack({"gateway": GATEWAY_ENV}) as stack:
        conversation = next(s for s in stack.config.services if s.name == "conversation")
        limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
        async with httpx.AsyncClient(base_url=stack.edge_url, limits=limits, timeout=30) as edge:
            token, conversations = await _set_up(edge)
            metadata = (("authorization", f"Bearer {token}"),)

            async def json_send(worker: int, _: int) -> None:
                request = _send_request(conversations[worker])
                response = await edge.post(
                    f"/v1/conversations/{request.conversation_id}/messages",
                    headers={"authorization": f"Bearer {token}"},
                    json={"client_message_id": request.client_message_id, "text": request.text},
                )
                response.raise_for_status()

            results: dict[str, Any] = {"send_json_via_edge": await _measure(json_send)}

        for name, target in (
            ("send_grpc_via_edge", stack.edge_url.removeprefix("http://")),
            ("send_grpc_direct", conversation.address),
        ):
            async with grpc.aio.insecure_channel(target) as channel:
                stub = conversation_pb2_grpc.ConversationServiceStub(channel)

                async def grpc_send(worker: int, _: int, stub: Any = stub) -> None:
                    await stub.SendMessage(
                        _send_request(conversations[worker]), metadata=metadata, timeout=30
                    )

                results[name] = await _measure(grpc_send)

    direct = results["send_grpc_direct"]
    for via in ("send_grpc_via_edge", "send_json_via_edge"):
        name = via.removeprefix("send_")
        for phase in ("paced", "closed_loop_c32"):
            for stat in ("p50_ms", "p99_ms"):
                added = results[via][phase][stat] - direct[phase][stat]
                results[f"added_{stat}_{name}_{phase}"] = round(added, 2)
    output = {
        "benchmark": "gateway",
        "concurrency": CONCURRENCY,
        **results,
        "goals": {
            "added_p50_ms_grpc_via_edge_paced": "<= 3",
            "added_p99_ms_grpc_via_edge_paced": "<= 10",
        },
    }
    for name in ("send_json_via_edge", "send_grpc_via_edge", "send_grpc_direct"):
        for phase in ("paced", "closed_loop_c32"):
            row = results[name][phase]
            print(
                f"{name:<22} {phase:<16} p50 {row['p50_ms']:>7} ms  p99 {row['p99_ms']:>7} ms  "
                f"{row.get('throughput_per_s', row.get('rate_per_s'))}/s  errors {row['errors']}",
                file=sys.stderr,
            )
    print(json.dumps(output))


if __name__ == "__main__":
    asyncio.run(main())

"""Helpers for talking to the Envoy edge the way clients do: JSON, gRPC-Web, grpcurl."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
from google.protobuf.message import Message

GRPCURL = str(Path(sys.executable).parent / "grpcurl")


def grpcurl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GRPCURL, "-plaintext", *args], capture_output=True, text=True, timeout=30, check=check
    )


def grpc_web_frame(message: Message) -> bytes:
    payload = message.SerializeToString()
    return b"\x00" + struct.pack(">I", len(payload)) + payload


def grpc_web_messages(body: bytes) -> tuple[list[bytes], dict[str, str]]:
    """The data frames and the trailers of a gRPC-Web response body."""
    messages: list[bytes] = []
    trailers: dict[str, str] = {}
    offset = 0
    while offset < len(body):
        flags, length = body[offset], struct.unpack(">I", body[offset + 1 : offset + 5])[0]
        chunk = body[offset + 5 : offset + 5 + length]
        if flags & 0x80:
            for line in chunk.decode().strip().split("\r\n"):
                key, _, value = line.partition(":")
                trailers[key.strip().lower()] = value.strip()
        else:
            messages.append(chunk)
        offset += 5 + length
    return messages, trailers


def server_sent_events(text: str) -> list[Any]:
    return [
        json.loads(line.removeprefix("data:").strip())
        for line in text.splitlines()
        if line.startswith("data:") and line.strip() != "data: [DONE]"
    ]


async def sign_up(client: httpx.AsyncClient, slug: str | None = None) -> dict[str, Any]:
    slug = slug or f"t-{uuid.uuid4().hex[:10]}"
    response = await client.post(
        "/v1/auth/signup",
        json={
            "tenant_name": slug,
            "tenant_slug": slug,
            "email": f"owner@{slug}.test",
            "password": "correct horse battery staple",
            "display_name": "Owner",
        },
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}

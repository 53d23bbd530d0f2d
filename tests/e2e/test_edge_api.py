"""The public API through the Envoy edge: JSON, gRPC-Web and grpcurl get the same answers,
the same errors and the same limits."""

from __future__ import annotations

import json

import httpx
import pytest

from switchboard.access.v1 import access_pb2
from switchboard.identity.v1 import identity_pb2
from switchboard_devstack.stack import Stack
from tests.e2e.edge import (
    bearer,
    grpc_web_frame,
    grpc_web_messages,
    grpcurl,
    sign_up,
)


@pytest.fixture
async def edge(stack: Stack) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=stack.edge_url, timeout=30)


async def test_sign_up_log_in_refresh_and_me_over_json(edge: httpx.AsyncClient) -> None:
    async with edge:
        signed_up = await sign_up(edge)
        slug = signed_up["tenant"]["slug"]
        login = await edge.post(
            "/v1/auth/login",
            json={
                "tenant_slug": slug,
                "email": f"owner@{slug}.test",
                "password": "correct horse battery staple",
            },
        )
        assert login.status_code == 200
        tokens = login.json()["tokens"]
        refreshed = await edge.post(
            "/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert refreshed.status_code == 200
        me = await edge.get("/v1/me", headers=bearer(refreshed.json()["tokens"]["access_token"]))
        assert me.status_code == 200
        assert me.json()["user"]["role"] == "ROLE_OWNER"  # proto field names, enum names
        jwks = await edge.get("/.well-known/jwks.json")
        assert jwks.status_code == 200
        assert {key["kty"] for key in jwks.json()["keys"]} == {"OKP"}


async def test_the_same_call_works_over_grpc_web_and_grpcurl(
    stack: Stack, edge: httpx.AsyncClient
) -> None:
    async with edge:
        token = (await sign_up(edge))["tokens"]["access_token"]
        response = await edge.post(
            "/switchboard.identity.v1.IdentityService/GetMe",
            content=grpc_web_frame(identity_pb2.GetMeRequest()),
            headers={"content-type": "application/grpc-web+proto", **bearer(token)},
        )
    messages, trailers = grpc_web_messages(response.content)
    assert trailers["grpc-status"] == "0"
    me = identity_pb2.GetMeResponse.FromString(messages[0])
    assert me.user.role == access_pb2.ROLE_OWNER
    address = stack.edge_url.removeprefix("http://")
    answer = grpcurl(
        "-H",
        f"authorization: Bearer {token}",
        address,
        "switchboard.identity.v1.IdentityService/GetMe",
    )
    assert json.loads(answer.stdout)["user"]["user_id"] == me.user.user_id
    listed = grpcurl(address, "list").stdout.split()
    assert "switchboard.conversation.v1.ConversationService" in listed
    described = grpcurl(address, "describe", "switchboard.identity.v1.IdentityService").stdout
    assert "rpc SignUp" in described


@pytest.mark.parametrize(
    ("body", "content", "field"),
    [
        (None, b'{"tenant_name": "x', ""),
        (None, b'{"tenant_name": 5}', "tenant_name"),
        ({"tenant_name": "A", "no_such_field": 1}, None, "no_such_field"),
        (None, b'{"tenant_name": "\xff\xfe"}', ""),
        ({"tenant_name": "x" * 2_000_000}, None, None),
    ],
    ids=["malformed JSON", "wrong type", "unknown field", "invalid UTF-8", "oversized body"],
)
async def test_bad_json_gets_400_with_a_json_error_and_writes_nothing(
    edge: httpx.AsyncClient, body: object, content: bytes | None, field: str | None
) -> None:
    async with edge:
        if body is not None:
            content = json.dumps(body).encode()
        response = await edge.post(
            "/v1/auth/signup", content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400
        error = response.json()
        assert error["code"] == 3
        assert error["message"]
        if field is not None:
            violations = error["details"][0]["field_violations"]
            assert violations[0]["field"] == field
        # Nothing was created: the tenant name was never taken.
        assert (await edge.post("/v1/auth/login", json={})).status_code == 400


async def test_a_validation_error_names_every_bad_field(edge: httpx.AsyncClient) -> None:
    async with edge:
        response = await edge.post(
            "/v1/auth/signup",
            json={
                "tenant_name": "Acme",
                "tenant_slug": "Bad Slug",
                "email": "nope",
                "password": "short",
                "display_name": "O",
            },
        )
    assert response.status_code == 400
    fields = {v["field"] for v in response.json()["details"][0]["field_violations"]}
    assert fields == {"tenant_slug", "email", "password"}


async def test_a_burst_gets_429_with_retry_after_while_another_tenant_goes_on(
    edge: httpx.AsyncClient,
) -> None:
    async with edge:
        noisy = (await sign_up(edge))["tokens"]["access_token"]
        quiet = (await sign_up(edge))["tokens"]["access_token"]
        statuses = [
            (await edge.get("/v1/me", headers=bearer(noisy))).status_code for _ in range(15)
        ]
        assert 429 in statuses
        refused = await edge.get("/v1/me", headers=bearer(noisy))
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["details"][0]["@type"].endswith("RetryInfo")
        assert (await edge.get("/v1/me", headers=bearer(quiet))).status_code == 200


async def test_an_unmapped_path_is_a_json_404(edge: httpx.AsyncClient) -> None:
    async with edge:
        response = await edge.get("/v1/no/such/thing")
    assert response.status_code == 404
    assert response.json()["code"] == 5

"""The gateway serves the public API under the contracts' own names and forwards each call."""

from __future__ import annotations

import asyncpg
import grpc
import pytest

from switchboard.gateway.v1 import gateway_pb2
from switchboard.identity.v1 import identity_pb2
from switchboard.llm.v1 import llm_pb2, llm_pb2_grpc
from switchboard_runtime.grpc_errors import field_violations_of
from tests.identity_fixtures import PASSWORD, IdentityUnderTest, bearer
from tests.integration.gateway.conftest import GatewayUnderTest


async def _sign_up(gateway: GatewayUnderTest, slug: str = "acme") -> identity_pb2.SignUpResponse:
    response: identity_pb2.SignUpResponse = await gateway.identity.SignUp(
        identity_pb2.SignUpRequest(
            tenant_name="Acme",
            tenant_slug=slug,
            email=f"owner@{slug}.test",
            password=PASSWORD,
            display_name="Olive",
        )
    )
    return response


async def test_identity_calls_through_the_gateway_reach_identity(
    gateway: GatewayUnderTest,
) -> None:
    signed_up = await _sign_up(gateway)
    me = await gateway.identity.GetMe(
        identity_pb2.GetMeRequest(), metadata=bearer(signed_up.tokens.access_token)
    )
    assert me.user.user_id == signed_up.user.user_id
    login = await gateway.identity.Login(
        identity_pb2.LoginRequest(tenant_slug="acme", email="owner@acme.test", password=PASSWORD)
    )
    assert login.user.user_id == signed_up.user.user_id


async def test_upstream_errors_come_back_with_their_code_and_message(
    gateway: GatewayUnderTest,
) -> None:
    await _sign_up(gateway)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _sign_up(gateway)
    assert raised.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "acme" in (raised.value.details() or "")


async def test_invalid_requests_are_refused_at_the_gateway_and_never_forwarded(
    gateway: GatewayUnderTest, identity: IdentityUnderTest
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await gateway.identity.SignUp(
            identity_pb2.SignUpRequest(tenant_name="A", tenant_slug="ok-slug", email="nope")
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = {field for field, _ in field_violations_of(raised.value)}
    assert fields == {"email", "password", "display_name"}
    conn = await asyncpg.connect(identity.database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM tenants") == 0
    finally:
        await conn.close()


async def test_internal_methods_are_not_served_at_the_door(gateway: GatewayUnderTest) -> None:
    signed_up = await _sign_up(gateway)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await gateway.identity.Authenticate(
            identity_pb2.AuthenticateRequest(access_token=signed_up.tokens.access_token),
            metadata=bearer(signed_up.tokens.access_token),
        )
    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_a_service_that_is_down_is_reported_unavailable_without_internals(
    gateway: GatewayUnderTest,
) -> None:
    signed_up = await _sign_up(gateway)
    router = llm_pb2_grpc.LlmServiceStub(gateway.channel)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await router.ListModels(
            llm_pb2.ListModelsRequest(), metadata=bearer(signed_up.tokens.access_token)
        )
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert raised.value.details() == "the llm-router service is unavailable; retry"


async def test_the_gateway_says_which_public_services_it_serves(gateway: GatewayUnderTest) -> None:
    info = await gateway.info.GetServerInfo(gateway_pb2.GetServerInfoRequest())
    assert "switchboard.identity.v1.IdentityService" in info.services
    assert "switchboard.conversation.v1.ConversationService" in info.services

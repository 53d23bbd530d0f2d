"""Token buckets per principal and per tenant: a burst is refused with RetryInfo, and one
tenant's burst never spends another tenant's budget."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from switchboard.identity.v1 import identity_pb2
from tests.identity_fixtures import PASSWORD, bearer
from tests.integration.gateway.conftest import GatewayUnderTest


async def _code(gateway: GatewayUnderTest, token: str) -> grpc.StatusCode:
    try:
        await gateway.identity.GetMe(identity_pb2.GetMeRequest(), metadata=bearer(token))
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def _owner_token(gateway: GatewayUnderTest, slug: str) -> str:
    signed_up = await gateway.identity.SignUp(
        identity_pb2.SignUpRequest(
            tenant_name=slug,
            tenant_slug=slug,
            email=f"o@{slug}.test",
            password=PASSWORD,
            display_name="O",
        )
    )
    token: str = signed_up.tokens.access_token
    return token


async def test_a_burst_over_the_limit_is_refused_while_another_tenant_goes_on(
    start_gateway: Callable[..., Any],
) -> None:
    gateway: GatewayUnderTest = await start_gateway(
        rate_limit_read="0.5:5", rate_limit_auth="50:50"
    )
    noisy = await _owner_token(gateway, "noisy")
    quiet = await _owner_token(gateway, "quiet")
    codes = [await _code(gateway, noisy) for _ in range(8)]
    assert codes[:5] == [grpc.StatusCode.OK] * 5
    assert set(codes[5:]) == {grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert [await _code(gateway, quiet) for _ in range(5)] == [grpc.StatusCode.OK] * 5


async def test_a_refusal_says_when_to_retry(start_gateway: Callable[..., Any]) -> None:
    gateway: GatewayUnderTest = await start_gateway(
        rate_limit_read="0.5:1", rate_limit_auth="50:50"
    )
    token = await _owner_token(gateway, "acme")
    await gateway.identity.GetMe(identity_pb2.GetMeRequest(), metadata=bearer(token))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await gateway.identity.GetMe(identity_pb2.GetMeRequest(), metadata=bearer(token))
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    status = rpc_status.from_call(raised.value)
    assert status is not None
    info = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(info)
    assert 0 < info.retry_delay.ToTimedelta().total_seconds() <= 2
    assert dict(raised.value.trailing_metadata() or ())["retry-after"] == "2"


async def test_sign_in_is_limited_per_email_whoever_asks(start_gateway: Callable[..., Any]) -> None:
    gateway: GatewayUnderTest = await start_gateway(rate_limit_auth="0.1:3")
    codes = []
    for _ in range(4):
        try:
            await gateway.identity.Login(
                identity_pb2.LoginRequest(tenant_slug="acme", email="x@acme.test", password="p")
            )
        except grpc.aio.AioRpcError as error:
            codes.append(error.code())
    assert codes[:3] == [grpc.StatusCode.UNAUTHENTICATED] * 3
    assert codes[3] == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_a_tenant_bucket_caps_all_of_its_principals_together(
    start_gateway: Callable[..., Any],
) -> None:
    gateway: GatewayUnderTest = await start_gateway(
        rate_limit_read="0.01:2", rate_limit_tenant_factor=1.5, rate_limit_auth="50:50"
    )
    owner = await _owner_token(gateway, "acme")
    assert [await _code(gateway, owner) for _ in range(2)] == [grpc.StatusCode.OK] * 2
    # The tenant's bucket holds 3: a second principal of the same tenant gets one call.
    key = await gateway.identity.CreateApiKey(
        identity_pb2.CreateApiKeyRequest(name="k", scopes=["users:read"]), metadata=bearer(owner)
    )
    assert await _code(gateway, key.secret) == grpc.StatusCode.OK
    assert await _code(gateway, key.secret) == grpc.StatusCode.RESOURCE_EXHAUSTED

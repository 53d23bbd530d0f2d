"""Every public method by every kind of caller: the gateway lets in exactly whom the contract
names, and refuses everyone else before anything is validated or forwarded."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf.message_factory import GetMessageClass

from switchboard.access.v1 import access_pb2
from switchboard.identity.v1 import identity_pb2
from switchboard_runtime.contract import all_services, is_exposed, policy_of
from switchboard_runtime.principal import Role, scopes_of_role
from tests.identity_fixtures import PASSWORD, bearer
from tests.integration.gateway.conftest import GatewayUnderTest

DENIALS = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}
EXPOSED = [
    method
    for service in all_services()
    if service.file.package != "switchboard.gateway.v1"
    for method in service.methods
    if is_exposed(method)
]


@dataclass(frozen=True)
class Caller:
    name: str
    token: str | None
    role: Role | None
    scopes: frozenset[str]


def expected_denial(caller: Caller, policy: access_pb2.AccessPolicy) -> grpc.StatusCode | None:
    if policy.audience == access_pb2.AUDIENCE_PUBLIC:
        return None
    if caller.token is None:
        return grpc.StatusCode.UNAUTHENTICATED
    if (
        caller.role is not None
        and policy.roles
        and caller.role < min(Role(r) for r in policy.roles)
    ):
        return grpc.StatusCode.PERMISSION_DENIED
    if not set(policy.scopes) <= caller.scopes:
        return grpc.StatusCode.PERMISSION_DENIED
    return None


async def _callers(gateway: GatewayUnderTest) -> list[Caller]:
    owner = await gateway.identity.SignUp(
        identity_pb2.SignUpRequest(
            tenant_name="Acme",
            tenant_slug="acme",
            email="owner@acme.test",
            password=PASSWORD,
            display_name="Owner",
        )
    )
    owner_token = owner.tokens.access_token
    callers = [
        Caller("anonymous", None, None, frozenset()),
        Caller("owner", owner_token, Role.OWNER, scopes_of_role(Role.OWNER)),
    ]
    for role in (Role.ADMIN, Role.MEMBER):
        email = f"{role.label}@acme.test"
        await gateway.identity.CreateUser(
            identity_pb2.CreateUserRequest(
                email=email, password=PASSWORD, display_name=role.label, role=int(role)
            ),  # type: ignore[arg-type]
            metadata=bearer(owner_token),
        )
        login = await gateway.identity.Login(
            identity_pb2.LoginRequest(tenant_slug="acme", email=email, password=PASSWORD)
        )
        callers.append(Caller(role.label, login.tokens.access_token, role, scopes_of_role(role)))
    key = await gateway.identity.CreateApiKey(
        identity_pb2.CreateApiKeyRequest(name="narrow", scopes=["bots:read"]),
        metadata=bearer(owner_token),
    )
    callers.append(
        Caller("api key with bots:read only", key.secret, None, frozenset({"bots:read"}))
    )
    return callers


async def _outcome(gateway: GatewayUnderTest, method: Any, token: str | None) -> grpc.StatusCode:
    path = f"/{method.containing_service.full_name}/{method.name}"
    request = GetMessageClass(method.input_type)()
    metadata = bearer(token) if token else ()
    try:
        if method.server_streaming:
            call = gateway.channel.unary_stream(
                path, request_serializer=lambda m: m.SerializeToString(), response_deserializer=None
            )(request, metadata=metadata, timeout=5)
            async for _ in call:
                break
            call.cancel()
        else:
            await gateway.channel.unary_unary(
                path, request_serializer=lambda m: m.SerializeToString(), response_deserializer=None
            )(request, metadata=metadata, timeout=5)
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def test_every_public_method_admits_exactly_the_callers_its_policy_names(
    start_gateway: Callable[..., Any],
) -> None:
    gateway: GatewayUnderTest = await start_gateway(
        rate_limit_read="1000:1000",
        rate_limit_write="1000:1000",
        rate_limit_auth="1000:1000",
        rate_limit_generation="1000:1000",
        rate_limit_webhook="1000:1000",
    )
    callers = await _callers(gateway)
    wrong = []
    for method in EXPOSED:
        policy = policy_of(method)
        assert policy is not None
        for caller in callers:
            outcome = await _outcome(gateway, method, caller.token)
            expected = expected_denial(caller, policy)
            if (expected is None and outcome in DENIALS) or (
                expected is not None and outcome != expected
            ):
                wrong.append(
                    f"{method.full_name} as {caller.name}: {outcome.name}, "
                    f"expected {expected.name if expected else 'admitted'}"
                )
    assert wrong == []
    assert len(EXPOSED) * len(callers) > 150


@pytest.mark.parametrize("method", ["CreateUser", "SetUserRole", "CreateApiKey"])
def test_the_matrix_would_catch_a_member_let_into_an_admin_method(method: str) -> None:
    policy = policy_of(
        identity_pb2.DESCRIPTOR.services_by_name["IdentityService"].methods_by_name[method]
    )
    assert policy is not None
    member = Caller("member", "t", Role.MEMBER, scopes_of_role(Role.MEMBER))
    assert expected_denial(member, policy) == grpc.StatusCode.PERMISSION_DENIED

"""Access policies decide who may call a method; page tokens cannot be forged across lists."""

from __future__ import annotations

import grpc
import pytest

from switchboard.access.v1 import access_pb2
from switchboard_runtime.auth_interceptor import Denied, authorize
from switchboard_runtime.contract import all_services, policy_of
from switchboard_runtime.pagination import (
    InvalidPageTokenError,
    decode_page_token,
    encode_page_token,
    page_size,
)
from switchboard_runtime.principal import (
    ADMIN_SCOPES,
    MEMBER_SCOPES,
    SERVICE_ONLY_SCOPES,
    Principal,
    PrincipalKind,
    Role,
    scopes_of_role,
)


def _user(role: Role) -> Principal:
    return Principal(PrincipalKind.USER, "t", "u", role, scopes_of_role(role))


def _policy(**fields: object) -> access_pb2.AccessPolicy:
    return access_pb2.AccessPolicy(audience=access_pb2.AUDIENCE_AUTHENTICATED, **fields)  # type: ignore[arg-type]


def test_a_member_is_denied_an_admin_method_and_an_admin_allowed() -> None:
    policy = _policy(roles=[access_pb2.ROLE_ADMIN], scopes=["users:write"])
    with pytest.raises(Denied) as denied:
        authorize(policy, _user(Role.MEMBER))
    assert denied.value.code == grpc.StatusCode.PERMISSION_DENIED
    authorize(policy, _user(Role.ADMIN))
    authorize(policy, _user(Role.OWNER))


def test_an_api_key_is_judged_by_its_scopes_alone() -> None:
    policy = _policy(roles=[access_pb2.ROLE_ADMIN], scopes=["bots:write"])
    authorize(policy, Principal(PrincipalKind.API_KEY, "t", "k", None, frozenset({"bots:write"})))
    with pytest.raises(Denied, match="bots:write"):
        authorize(
            policy, Principal(PrincipalKind.API_KEY, "t", "k", None, frozenset({"bots:read"}))
        )


def test_internal_methods_admit_only_services() -> None:
    policy = access_pb2.AccessPolicy(audience=access_pb2.AUDIENCE_INTERNAL)
    with pytest.raises(Denied):
        authorize(policy, _user(Role.OWNER))
    authorize(policy, Principal(PrincipalKind.SERVICE, "", "conversation"))


def test_every_scope_the_contracts_name_is_granted_to_someone() -> None:
    named = {
        scope
        for service in all_services()
        for method in service.methods
        if (policy := policy_of(method)) is not None
        for scope in policy.scopes
    }
    assert named <= ADMIN_SCOPES | SERVICE_ONLY_SCOPES
    assert MEMBER_SCOPES < ADMIN_SCOPES


def test_a_page_token_round_trips_and_is_bound_to_its_list() -> None:
    token = encode_page_token("users:tenant-a", ["2026-01-01T00:00:00+00:00", "id-1"])
    assert decode_page_token(token, "users:tenant-a") == ["2026-01-01T00:00:00+00:00", "id-1"]
    assert decode_page_token("", "users:tenant-a") is None
    with pytest.raises(InvalidPageTokenError):
        decode_page_token(token, "users:tenant-b")
    with pytest.raises(InvalidPageTokenError):
        decode_page_token("not base64 at all!", "users:tenant-a")


def test_page_size_zero_means_the_default() -> None:
    assert page_size(0) == 50
    assert page_size(7) == 7

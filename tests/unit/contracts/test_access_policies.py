"""Every method in the contracts declares who may call it, and exposure follows that policy."""

from __future__ import annotations

import pytest
from google.api import annotations_pb2
from google.protobuf.descriptor import MethodDescriptor

from switchboard.access.v1 import access_pb2
from switchboard_runtime.contract import all_services, is_exposed, policy_of, public_services

METHODS = [method for service in all_services() for method in service.methods]


def _id(method: MethodDescriptor) -> str:
    return method.full_name


def test_the_contracts_declare_services_of_all_five_packages() -> None:
    packages = {service.file.package for service in all_services()}
    assert packages == {
        "switchboard.gateway.v1",
        "switchboard.identity.v1",
        "switchboard.conversation.v1",
        "switchboard.llm.v1",
        "switchboard.connectors.v1",
    }


@pytest.mark.parametrize("method", METHODS, ids=_id)
def test_every_method_declares_an_access_policy_with_an_audience(
    method: MethodDescriptor,
) -> None:
    policy = policy_of(method)
    assert policy is not None, f"{method.full_name} has no (switchboard.access.v1.policy)"
    assert policy.audience != access_pb2.AUDIENCE_UNSPECIFIED


@pytest.mark.parametrize("method", [m for m in METHODS if is_exposed(m)], ids=_id)
def test_every_exposed_method_has_a_rest_mapping_and_a_rate_limit_class(
    method: MethodDescriptor,
) -> None:
    assert method.GetOptions().HasExtension(annotations_pb2.http)
    policy = policy_of(method)
    assert policy is not None
    assert policy.rate_limit_class != access_pb2.RATE_LIMIT_CLASS_UNSPECIFIED


@pytest.mark.parametrize("method", [m for m in METHODS if not is_exposed(m)], ids=_id)
def test_internal_methods_have_no_rest_mapping(method: MethodDescriptor) -> None:
    assert not method.GetOptions().HasExtension(annotations_pb2.http)


def test_authenticated_writes_name_the_scope_an_api_key_needs() -> None:
    unscoped = [
        method.full_name
        for method in METHODS
        if (policy := policy_of(method)) is not None
        and policy.audience == access_pb2.AUDIENCE_AUTHENTICATED
        and not policy.scopes
        and method.name not in {"Logout", "GetMe"}
    ]
    assert unscoped == []


def test_public_services_are_those_with_an_exposed_method() -> None:
    services = public_services()
    assert "switchboard.identity.v1.IdentityService" in services
    assert "switchboard.connectors.v1.WebhookService" in services
    assert all(
        any(is_exposed(m) for m in s.methods) for s in all_services() if s.full_name in services
    )

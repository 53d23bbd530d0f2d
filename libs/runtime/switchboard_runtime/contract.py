"""What the contracts in protos/ say about each service: its methods and their access policy.

The gateway and the Envoy edge read the public surface from here, so which methods are exposed
follows the protos and nobody keeps a list by hand.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

from google.protobuf import descriptor_pool
from google.protobuf.descriptor import FileDescriptor, MethodDescriptor, ServiceDescriptor

from switchboard.access.v1 import access_pb2
from switchboard.connectors.v1 import connectors_pb2
from switchboard.conversation.v1 import conversation_pb2
from switchboard.gateway.v1 import gateway_pb2
from switchboard.identity.v1 import identity_pb2
from switchboard.llm.v1 import llm_pb2

#: Every file that declares a Switchboard gRPC service.
SERVICE_FILES: tuple[FileDescriptor, ...] = (
    gateway_pb2.DESCRIPTOR,
    identity_pb2.DESCRIPTOR,
    conversation_pb2.DESCRIPTOR,
    llm_pb2.DESCRIPTOR,
    connectors_pb2.DESCRIPTOR,
)

_EXPOSED = frozenset({access_pb2.AUDIENCE_PUBLIC, access_pb2.AUDIENCE_AUTHENTICATED})


def all_services() -> Iterator[ServiceDescriptor]:
    """Every gRPC service of every Switchboard package."""
    for file in SERVICE_FILES:
        yield from file.services_by_name.values()


def policy_of(method: MethodDescriptor) -> access_pb2.AccessPolicy | None:
    """The method's access policy, or None when its proto declares none."""
    options = method.GetOptions()
    if not options.HasExtension(access_pb2.policy):
        return None
    return options.Extensions[access_pb2.policy]


@functools.cache
def method_at(path: str) -> MethodDescriptor | None:
    """The method a gRPC path (`/package.Service/Method`) names, if the process knows it."""
    try:
        return descriptor_pool.Default().FindMethodByName(path.lstrip("/").replace("/", "."))
    except KeyError:
        return None


def policy_at(path: str) -> access_pb2.AccessPolicy | None:
    """The access policy of the method a gRPC path names, if it has one."""
    method = method_at(path)
    return None if method is None else policy_of(method)


def is_exposed(method: MethodDescriptor) -> bool:
    """Whether the gateway serves this method to the outside world."""
    policy = policy_of(method)
    return policy is not None and policy.audience in _EXPOSED


def public_services() -> list[str]:
    """Full names of the services with at least one method the gateway exposes."""
    return [
        service.full_name
        for service in all_services()
        if any(is_exposed(method) for method in service.methods)
    ]

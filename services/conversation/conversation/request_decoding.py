"""Serving a gRPC service whose requests may not decode, with INVALID_ARGUMENT instead of a crash.

protobuf rejects a proto3 `string` that is not valid UTF-8 while parsing, inside grpc's request
deserializer, before any interceptor or handler runs; grpc then answers UNKNOWN with the
exception text ("Error parsing message ... String field had bad UTF-8"). `add_service`
registers a servicer with deserializers that never raise: bytes that do not parse become an
`UndecodableRequest` naming the fields with invalid UTF-8, which the servicer turns into
INVALID_ARGUMENT with field violations (interceptors run first, so an unauthenticated caller
still gets UNAUTHENTICATED before its input is examined).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import grpc
import grpc.aio
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, ServiceDescriptor
from google.protobuf.message import DecodeError, Message

_NOT_PROTOBUF = ("", "the request is not a valid protobuf message")


class UndecodableRequest:
    """A request whose bytes are not a valid message of its type."""

    def __init__(self, violations: list[tuple[str, str]]) -> None:
        self.violations = violations


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7


def invalid_utf8_fields(
    descriptor: Descriptor, data: bytes, prefix: str = ""
) -> list[tuple[str, str]]:
    """(field path, problem) for each string field in `data` holding invalid UTF-8.

    Walks the wire format with the message's descriptor, into nested messages; whatever it
    cannot follow (truncated input, groups) ends the walk.
    """
    found: list[tuple[str, str]] = []
    seen: Counter[int] = Counter()
    position = 0
    try:
        while position < len(data):
            key, position = _varint(data, position)
            number, wire_type = key >> 3, key & 7
            if wire_type == 0:
                _, position = _varint(data, position)
            elif wire_type == 1:
                position += 8
            elif wire_type == 5:
                position += 4
            elif wire_type == 2:
                length, position = _varint(data, position)
                chunk, position = data[position : position + length], position + length
                field = descriptor.fields_by_number.get(number)
                if field is None:
                    continue
                path = prefix + field.name
                if field.is_repeated:
                    path += f"[{seen[number]}]"
                    seen[number] += 1
                if field.type == FieldDescriptor.TYPE_STRING:
                    try:
                        chunk.decode("utf-8")
                    except UnicodeDecodeError:
                        found.append((path, "must be valid UTF-8"))
                elif field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type:
                    found.extend(invalid_utf8_fields(field.message_type, chunk, path + "."))
            else:
                break
    except IndexError:
        pass
    return found


def tolerant_deserializer(message_class: type[Message]) -> Callable[[bytes], Any]:
    """`message_class.FromString` that returns an UndecodableRequest instead of raising."""

    def deserialize(data: bytes) -> Message | UndecodableRequest:
        try:
            return message_class.FromString(data)
        except DecodeError:
            violations = invalid_utf8_fields(message_class.DESCRIPTOR, data)  # type: ignore[arg-type]
            return UndecodableRequest(violations or [_NOT_PROTOBUF])

    return deserialize


def add_service(servicer: object, server: grpc.aio.Server, service: ServiceDescriptor) -> None:
    """Register `servicer` (unary and server-streaming methods) for `service`."""
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in service.methods:
        if method.client_streaming:
            raise TypeError(f"{method.full_name}: client streaming is not supported here")
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        factory = (
            grpc.unary_stream_rpc_method_handler
            if method.server_streaming
            else grpc.unary_unary_rpc_method_handler
        )
        handlers[method.name] = factory(
            getattr(servicer, method.name),
            request_deserializer=tolerant_deserializer(request_class),
            response_serializer=response_class.SerializeToString,
        )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),)
    )
    server.add_registered_method_handlers(service.full_name, handlers)

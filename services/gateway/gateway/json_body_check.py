"""The JSON body check the Envoy edge asks before transcoding a JSON request.

Envoy's transcoder silently drops JSON fields the request message does not have (a client's
typo, or a field it believes is honoured) and answers wrong types and malformed JSON in plain
text. Envoy sends each JSON write here first (ext_authz over HTTP, body included): the body
is parsed against the request message of the method its HTTP mapping names, strictly, and a
body that does not fit is refused with HTTP 400 and a JSON google.rpc.Status whose
BadRequest names the field — the same shape as every other error of the API. Nothing is
forwarded or written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web
from google.api import annotations_pb2
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, ServiceDescriptor
from google.protobuf.message_factory import GetMessageClass

from switchboard_runtime.contract import is_exposed

_HTTP_BODY: Final = "google.api.HttpBody"
_VERBS: Final = ("get", "put", "post", "delete", "patch")
_UNKNOWN_FIELD: Final = re.compile(r'has no field named "([^"]+)" at "([^"]*)"')
_BAD_FIELD: Final = re.compile(r"Failed to parse (\w+) field")


@dataclass(frozen=True, slots=True)
class BodyRoute:
    """An HTTP mapping whose body is JSON for `body_type`."""

    verb: str
    path: re.Pattern[str]
    body_type: Descriptor


def _path_regex(template: str) -> re.Pattern[str]:
    """`/v1/users/{user_id}:setRole` → a regex matching concrete paths of that template."""
    pattern = ""
    for literal, variable in re.findall(r"([^{]*)(\{[^}]*\})?", template):
        pattern += re.escape(literal)
        if variable:
            pattern += ".+" if variable.endswith("**}") else "[^/]+"
    return re.compile(pattern + r"\Z")


def body_routes(services: Iterable[ServiceDescriptor]) -> list[BodyRoute]:
    """The HTTP mappings of exposed methods that take a JSON (not raw) body."""
    routes: list[BodyRoute] = []
    for service in services:
        for method in service.methods:
            options = method.GetOptions()
            if not is_exposed(method) or not options.HasExtension(annotations_pb2.http):
                continue
            rule = options.Extensions[annotations_pb2.http]
            for binding in (rule, *rule.additional_bindings):
                verb = binding.WhichOneof("pattern")
                if verb not in _VERBS or not binding.body:
                    continue
                body_type = method.input_type
                if binding.body != "*":
                    field = body_type.fields_by_name[binding.body]
                    if field.message_type is None or field.message_type.full_name == _HTTP_BODY:
                        continue  # raw bodies (webhooks, OpenAI) are not protobuf JSON
                    body_type = field.message_type
                routes.append(
                    BodyRoute(verb.upper(), _path_regex(getattr(binding, verb)), body_type)
                )
    return routes


@dataclass(frozen=True, slots=True)
class BodyProblem:
    message: str
    field: str = ""


def problem_with(body: bytes, body_type: Descriptor) -> BodyProblem | None:
    """What is wrong with `body` as JSON for `body_type`, or None if nothing."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        return BodyProblem(f"request body is not valid UTF-8 (byte {error.start})")
    if not text.strip():
        return None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        return BodyProblem(
            f"malformed JSON: {error.msg} at line {error.lineno} column {error.colno}"
        )
    if not isinstance(document, dict):
        return BodyProblem("the request body must be a JSON object")
    try:
        json_format.ParseDict(document, GetMessageClass(body_type)(), ignore_unknown_fields=False)
    except json_format.ParseError as error:
        return _parse_problem(str(error))
    return None


def _parse_problem(text: str) -> BodyProblem:
    unknown = _UNKNOWN_FIELD.search(text)
    if unknown is not None:
        field, at = unknown.groups()
        # `at` is "RequestType" or "RequestType.nested_field"; keep the path below the root.
        prefix = at.partition(".")[2]
        path = f"{prefix}.{field}" if prefix else field
        return BodyProblem(f"unknown field {path!r}", path)
    bad = _BAD_FIELD.search(text)
    if bad is not None:
        return BodyProblem(f"wrong type or value for field {bad.group(1)!r}", bad.group(1))
    return BodyProblem(f"invalid request body: {text.splitlines()[0][:200]}")


def _status_json(problem: BodyProblem) -> dict[str, Any]:
    violation = {"field": problem.field, "description": problem.message}
    return {
        "code": 3,
        "message": f"invalid request: {problem.message}",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.BadRequest", "field_violations": [violation]}
        ],
    }


class JsonBodyCheck:
    """The HTTP endpoint Envoy's ext_authz calls; started and stopped with the gateway."""

    PATH_PREFIX: Final = "/check"

    def __init__(self, services: Iterable[ServiceDescriptor], *, host: str, port: int) -> None:
        self._routes = body_routes(services)
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None

    def route_for(self, verb: str, path: str) -> BodyRoute | None:
        for route in self._routes:
            if route.verb == verb and route.path.match(path):
                return route
        return None

    async def _check(self, request: web.Request) -> web.Response:
        path = request.path.removeprefix(self.PATH_PREFIX) or "/"
        route = self.route_for(request.method, path)
        if route is not None:
            problem = problem_with(await request.read(), route.body_type)
            if problem is not None:
                return web.json_response(_status_json(problem), status=400)
        # Unmapped paths are the transcoder's to answer (404), not this check's.
        return web.Response(status=200)

    async def open(self) -> None:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", self.PATH_PREFIX + "{tail:.*}", self._check)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

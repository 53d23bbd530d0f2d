"""The Envoy edge config: JSON/REST and gRPC-Web transcoding, CORS and routing to the gateway.

One listener serves HTTP/1.1 (JSON, gRPC-Web) and HTTP/2 (gRPC, gRPC-Web) on the same port
(codec AUTO). Requests flow through CORS → gRPC-Web → JSON transcoder → router:

- gRPC-Web is turned into gRPC, JSON calls mapped by `google.api.http` into gRPC calls; after
  transcoding the router picks the route again on the new `:path` (`/pkg.Service/Method`),
  because `match_incoming_request_route` is false and the transcoder clears the route cache.
- Calls to the connectors' webhook service go straight to connectors (platforms sign their
  webhooks; the gateway has nothing to add). They are matched both on the gRPC path (after
  transcoding) and on `/v1/webhooks/` (in case a request is not transcoded).
- Everything else goes to the gateway, the public policy point. A JSON request that matches
  no HTTP mapping is answered 404 by the transcoder.
- Envoy 1.40's transcoder drops unknown fields in a JSON body (there is no option to reject
  them); unknown query parameters and wrongly typed fields get 400.

Timeouts: routes have `timeout: 0s` (no overall limit) so server streams, such as a reply streamed
token by token or a live conversation watch, are not cut; `max_stream_duration` with
`grpc_timeout_header_max: 0s` makes Envoy honour each gRPC caller's own deadline
(`grpc-timeout`), uncapped. Idle streams are still bounded by `stream_idle_timeout`.

Body limits: the transcoder's own `max_request_body_size` answers an oversized JSON request
with 413. A `buffer` filter is deliberately not used: it would hold whole requests and break
client- and bidi-streaming gRPC; native gRPC and gRPC-Web messages are bounded by the
services' `max_receive_message_length` instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import descriptor_pb2

WEBHOOK_SERVICE = "switchboard.connectors.v1.WebhookService"
BODY_CHECK_FILTER = "envoy.filters.http.ext_authz"
WEBHOOK_PATH_PREFIX = "/v1/webhooks/"
DEFAULT_CORS_ORIGINS: tuple[str, ...] = ("http://localhost:*", "http://127.0.0.1:*")
MIB = 1024 * 1024

# What browsers may send and read: gRPC-Web needs x-grpc-web/x-user-agent/grpc-timeout in and
# grpc-status/grpc-message out, or a browser client cannot see the outcome of a call.
CORS_ALLOW_HEADERS = (
    "authorization,content-type,accept,x-api-key,x-request-id,idempotency-key,"
    "x-grpc-web,x-user-agent,grpc-timeout,traceparent,tracestate"
)
CORS_EXPOSE_HEADERS = "grpc-status,grpc-message,grpc-status-details-bin,x-request-id,traceparent"
CORS_ALLOW_METHODS = "GET,POST,PUT,PATCH,DELETE,OPTIONS"

_TYPE = "type.googleapis.com/envoy."


def origin_regex(pattern: str) -> str:
    """An RE2 regex for an allowed-origin glob.

    `*` alone allows any origin. In a glob, `*` stands for one host label or port
    (`[A-Za-z0-9-]+`), and a trailing `:*` makes the port optional, so
    `http://localhost:*` allows `http://localhost` and `http://localhost:5173`.
    """
    if pattern == "*":
        return ".*"
    optional_port = pattern.endswith(":*")
    body = pattern[:-2] if optional_port else pattern
    regex = "[A-Za-z0-9-]+".join(re.escape(part) for part in body.split("*"))
    if optional_port:
        regex += "(:[0-9]+)?"
    return regex


def services_in_descriptor(descriptor_path: Path) -> set[str]:
    """Fully-qualified names of every service in a FileDescriptorSet file."""
    descriptor_set = descriptor_pb2.FileDescriptorSet()
    descriptor_set.ParseFromString(descriptor_path.read_bytes())
    names: set[str] = set()
    for file in descriptor_set.file:
        prefix = f"{file.package}." if file.package else ""
        names.update(prefix + service.name for service in file.service)
    return names


def _duration(seconds: float) -> str:
    text = f"{seconds:.3f}".rstrip("0").rstrip(".")
    return f"{text or '0'}s"


def _split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected host:port, got {address!r}")
    return host.strip("[]"), int(port)


def _socket_address(host: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": host, "port_value": port}}


def _is_ip(host: str) -> bool:
    return bool(re.fullmatch(r"[0-9.]+|[0-9a-fA-F:]+", host))


def _cluster(
    name: str, address: str, *, connect_timeout: float, http2: bool = True
) -> dict[str, Any]:
    host, port = _split_address(address)
    protocol = (
        {"http2_protocol_options": {"connection_keepalive": {"interval": "30s", "timeout": "5s"}}}
        if http2
        else {"http_protocol_options": {}}
    )
    return {
        "name": name,
        # STATIC for IPs; STRICT_DNS when a hostname (a Kubernetes Service) is given.
        "type": "STATIC" if _is_ip(host) else "STRICT_DNS",
        "connect_timeout": _duration(connect_timeout),
        "lb_policy": "ROUND_ROBIN",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": _TYPE + "extensions.upstreams.http.v3.HttpProtocolOptions",
                # HTTP/2 pings keep long-lived streams alive and detect dead upstreams.
                "explicit_http_config": protocol,
            }
        },
        "circuit_breakers": {
            "thresholds": [
                {
                    "priority": "DEFAULT",
                    "max_connections": 1024,
                    "max_pending_requests": 1024,
                    # Over HTTP/2 this is the cap on concurrent streams (calls) to the service.
                    "max_requests": 4096,
                    "max_retries": 3,
                }
            ]
        },
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {"lb_endpoints": [{"endpoint": {"address": _socket_address(host, port)}}]}
            ],
        },
    }


def _route(
    match: dict[str, Any], cluster: str, *, timeout: float, body_check: bool = False
) -> dict[str, Any]:
    route: dict[str, Any] = {
        "match": match,
        "route": {
            "cluster": cluster,
            "timeout": _duration(timeout),
            "max_stream_duration": {"grpc_timeout_header_max": "0s"},
        },
    }
    if not body_check:
        route["typed_per_filter_config"] = {
            BODY_CHECK_FILTER: {
                "@type": _TYPE + "extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute",
                "disabled": True,
            }
        }
    return route


def _body_check(cluster: str, *, max_request_bytes: int) -> dict[str, Any]:
    """ext_authz over HTTP: the gateway checks a JSON body against its request message.

    Envoy's transcoder silently drops unknown fields and answers type errors in plain text;
    the gateway's body check (`gateway.json_body_check`) rejects both, and malformed JSON and
    invalid UTF-8, with a JSON google.rpc.Status naming the field, before anything is
    transcoded or forwarded.
    """
    return {
        "name": BODY_CHECK_FILTER,
        "typed_config": {
            "@type": _TYPE + "extensions.filters.http.ext_authz.v3.ExtAuthz",
            "transport_api_version": "V3",
            "http_service": {
                "server_uri": {"uri": f"http://{cluster}", "cluster": cluster, "timeout": "2s"},
                "path_prefix": "/check",
                "authorization_response": {
                    "allowed_client_headers": {
                        "patterns": [{"exact": "content-type"}, {"exact": "x-request-id"}]
                    }
                },
            },
            "with_request_body": {
                "max_request_bytes": max_request_bytes,
                "allow_partial_message": False,
                "pack_as_bytes": True,
            },
            "failure_mode_allow": False,
            "status_on_error": {"code": "ServiceUnavailable"},
        },
    }


# Envoy's transcoder does not put a gRPC error's trailers into the HTTP answer; this copies
# the RetryInfo of a 429 into the Retry-After header HTTP clients look for.
_RETRY_AFTER_LUA = """
function envoy_on_response(handle)
  local headers = handle:headers()
  if headers:get(":status") ~= "429" or headers:get("retry-after") ~= nil then
    return
  end
  local body = handle:body()
  if body == nil then
    return
  end
  local delay = string.match(body:getBytes(0, body:length()), '"retry_delay":"([%d%.]+)s"')
  if delay ~= nil then
    -- The header map must be fetched again once the body has been buffered.
    handle:headers():add("retry-after", tostring(math.max(1, math.ceil(tonumber(delay)))))
  end
end
"""

# Replies Envoy makes itself (no route, body too large, upstream down) as JSON shaped like the
# transcoded gRPC errors: {"code": <gRPC code>, "message": ..., "details": []}.
_LOCAL_REPLIES: tuple[tuple[int, int, int, str], ...] = (
    # (status Envoy chose, status sent, gRPC code, message; empty: Envoy's own text)
    (413, 400, 3, "request body is too large"),
    (400, 400, 3, ""),
    (404, 404, 5, ""),
    (503, 503, 14, ""),
    (504, 504, 4, ""),
)


def _local_reply_config() -> dict[str, Any]:
    # A refusal from the body check already is such JSON: matched first, and left as it is.
    mappers: list[dict[str, Any]] = [{"filter": {"response_flag_filter": {"flags": ["UAEX"]}}}]
    for chosen, sent, code, message in _LOCAL_REPLIES:
        mappers.append(
            {
                "filter": {
                    "status_code_filter": {
                        "comparison": {
                            "op": "EQ",
                            "value": {"default_value": chosen, "runtime_key": f"reply_{chosen}"},
                        }
                    }
                },
                "status_code": sent,
                "body_format_override": {
                    "json_format": {
                        "code": code,
                        "message": message or "%LOCAL_REPLY_BODY%",
                        "details": [],
                    }
                },
            }
        )
    return {"mappers": mappers}


def _header_prefix(name: str, prefix: str) -> dict[str, Any]:
    return {"name": name, "string_match": {"prefix": prefix}}


def _header_regex(name: str, regex: str) -> dict[str, Any]:
    return {"name": name, "string_match": {"safe_regex": {"regex": regex}}}


def _transcoder(
    descriptor_path: Path,
    services: Sequence[str],
    *,
    max_request_bytes: int,
    max_response_bytes: int,
) -> dict[str, Any]:
    return {
        "name": "envoy.filters.http.grpc_json_transcoder",
        "typed_config": {
            "@type": _TYPE + "extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder",
            "proto_descriptor": str(descriptor_path),
            "services": list(services),
            "print_options": {
                "add_whitespace": False,
                "always_print_primitive_fields": True,
                "always_print_enums_as_ints": False,
                "preserve_proto_field_names": True,
                # Server streams reach browsers as server-sent events (`data: {...}` frames),
                # which EventSource and fetch readers consume as they arrive.
                "stream_sse_style_delimited": True,
            },
            # Errors come back as JSON google.rpc.Status bodies with the mapped HTTP status.
            "convert_grpc_status": True,
            # An HTTP request no mapping matches gets a clear 404 here; passed through, it would
            # reach the gRPC gateway as a non-gRPC request and come back as a 503 "upstream
            # reset". Requests with a gRPC content type (native gRPC, gRPC-Web after its
            # filter, reflection, health) are never transcoded, so they are unaffected.
            "request_validation_options": {
                "reject_unknown_method": True,
                "reject_unknown_query_parameters": True,
                "reject_binding_body_field_collisions": True,
            },
            "match_incoming_request_route": False,
            "auto_mapping": False,
            "case_insensitive_enum_parsing": False,
            "max_request_body_size": max_request_bytes,
            "max_response_body_size": max_response_bytes,
        },
    }


def build_config(
    *,
    descriptor_path: Path | None,
    services: Sequence[str],
    gateway_address: str,
    connectors_address: str,
    listen_address: str = "0.0.0.0",
    listen_port: int = 8080,
    admin_port: int = 9901,
    cors_allowed_origins: Iterable[str] = DEFAULT_CORS_ORIGINS,
    max_request_bytes: int = MIB,
    max_response_bytes: int = 4 * MIB,
    route_timeout: float = 0.0,
    stream_idle_timeout: float = 300.0,
    connect_timeout: float = 1.0,
    connectors_services: Sequence[str] = (WEBHOOK_SERVICE,),
    connectors_path_prefixes: Sequence[str] = (WEBHOOK_PATH_PREFIX,),
    access_log: bool = True,
    body_check_address: str | None = None,
) -> dict[str, Any]:
    """The Envoy bootstrap as a dict (see the module docstring for the choices it makes).

    With no `services` (or no descriptor) the transcoder is left out: gRPC and gRPC-Web still
    work, JSON does not.
    """
    cors_policy = {
        "@type": _TYPE + "extensions.filters.http.cors.v3.CorsPolicy",
        "allow_origin_string_match": [
            {"safe_regex": {"regex": origin_regex(origin)}} for origin in cors_allowed_origins
        ],
        "allow_methods": CORS_ALLOW_METHODS,
        "allow_headers": CORS_ALLOW_HEADERS,
        "expose_headers": CORS_EXPOSE_HEADERS,
        "max_age": "600",
        # Credentials travel in the Authorization header, never in cookies.
        "allow_credentials": False,
        # A preflight from an origin we do not allow is answered here, not sent upstream.
        "forward_not_matching_preflights": False,
    }
    routes = [
        _route({"prefix": f"/{service}/"}, "connectors", timeout=route_timeout)
        for service in connectors_services
    ]
    routes += [
        _route({"prefix": prefix}, "connectors", timeout=route_timeout)
        for prefix in connectors_path_prefixes
    ]
    if body_check_address is not None:
        # gRPC and gRPC-Web carry protobuf, and reads carry no body: only JSON writes are
        # checked.
        routes.append(
            _route(
                {"prefix": "/", "headers": [_header_prefix("content-type", "application/grpc")]},
                "gateway",
                timeout=route_timeout,
            )
        )
        routes.append(
            _route(
                {"prefix": "/", "headers": [_header_regex(":method", "GET|HEAD|DELETE|OPTIONS")]},
                "gateway",
                timeout=route_timeout,
            )
        )
    routes.append(
        _route(
            {"prefix": "/"},
            "gateway",
            timeout=route_timeout,
            body_check=body_check_address is not None,
        )
    )

    http_filters: list[dict[str, Any]] = [
        {
            "name": "envoy.filters.http.cors",
            "typed_config": {"@type": _TYPE + "extensions.filters.http.cors.v3.Cors"},
        },
        {
            "name": "envoy.filters.http.grpc_web",
            "typed_config": {"@type": _TYPE + "extensions.filters.http.grpc_web.v3.GrpcWeb"},
        },
    ]
    http_filters.append(
        {
            "name": "envoy.filters.http.lua",
            "typed_config": {
                "@type": _TYPE + "extensions.filters.http.lua.v3.Lua",
                "default_source_code": {"inline_string": _RETRY_AFTER_LUA},
            },
        }
    )
    if body_check_address is not None:
        http_filters.append(_body_check("body_check", max_request_bytes=max_request_bytes))
    if descriptor_path is not None and services:
        http_filters.append(
            _transcoder(
                descriptor_path,
                services,
                max_request_bytes=max_request_bytes,
                max_response_bytes=max_response_bytes,
            )
        )
    http_filters.append(
        {
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": _TYPE + "extensions.filters.http.router.v3.Router"},
        }
    )

    connection_manager: dict[str, Any] = {
        "@type": _TYPE
        + "extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "edge",
        "codec_type": "AUTO",
        # Edge hardening from Envoy's "edge proxy" best practices.
        "use_remote_address": True,
        "normalize_path": True,
        "merge_slashes": True,
        "path_with_escaped_slashes_action": "KEEP_UNCHANGED",
        "stream_idle_timeout": _duration(stream_idle_timeout),
        "request_headers_timeout": "10s",
        "common_http_protocol_options": {
            "idle_timeout": "3600s",
            "headers_with_underscores_action": "REJECT_REQUEST",
        },
        "http2_protocol_options": {
            "max_concurrent_streams": 100,
            "initial_stream_window_size": 65536,
            "initial_connection_window_size": 1048576,
        },
        "route_config": {
            "name": "edge",
            "virtual_hosts": [
                {
                    "name": "switchboard",
                    "domains": ["*"],
                    "typed_per_filter_config": {"envoy.filters.http.cors": cors_policy},
                    "routes": routes,
                }
            ],
        },
        "http_filters": http_filters,
        "local_reply_config": _local_reply_config(),
        # Envoy's x-request-id comes back to HTTP clients, to quote in a bug report.
        "always_set_request_id_in_response": True,
    }
    if access_log:
        connection_manager["access_log"] = [
            {
                "name": "envoy.access_loggers.stdout",
                "typed_config": {
                    "@type": _TYPE + "extensions.access_loggers.stream.v3.StdoutAccessLog",
                    "log_format": {
                        "json_format": {
                            "time": "%START_TIME%",
                            "method": "%REQ(:METHOD)%",
                            "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
                            "grpc_path": "%REQ(:PATH)%",
                            "status": "%RESPONSE_CODE%",
                            "grpc_status": "%GRPC_STATUS%",
                            "flags": "%RESPONSE_FLAGS%",
                            "duration_ms": "%DURATION%",
                            "upstream": "%UPSTREAM_CLUSTER%",
                            "request_id": "%REQ(X-REQUEST-ID)%",
                        }
                    },
                },
            }
        ]

    return {
        "admin": {"address": _socket_address("127.0.0.1", admin_port)},
        "static_resources": {
            "listeners": [
                {
                    "name": "edge",
                    "address": _socket_address(listen_address, listen_port),
                    "per_connection_buffer_limit_bytes": max(max_request_bytes, 32768),
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": connection_manager,
                                }
                            ]
                        }
                    ],
                }
            ],
            "clusters": [
                _cluster("gateway", gateway_address, connect_timeout=connect_timeout),
                _cluster("connectors", connectors_address, connect_timeout=connect_timeout),
                *(
                    [
                        _cluster(
                            "body_check",
                            body_check_address,
                            connect_timeout=connect_timeout,
                            http2=False,
                        )
                    ]
                    if body_check_address is not None
                    else []
                ),
            ],
        },
        # Without a connection limit Envoy warns at startup; this also protects a laptop.
        "overload_manager": {
            "resource_monitors": [
                {
                    "name": "envoy.resource_monitors.global_downstream_max_connections",
                    "typed_config": {
                        "@type": _TYPE
                        + "extensions.resource_monitors.downstream_connections.v3"
                        + ".DownstreamConnectionsConfig",
                        "max_active_downstream_connections": 10000,
                    },
                }
            ]
        },
    }


def write_config(path: Path, config: dict[str, Any]) -> Path:
    """Write a config from `build_config` as JSON (`.json` suffix) or YAML (anything else)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".json":
        path.write_text(json.dumps(config, indent=2) + "\n")
    else:
        path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path

"""Composition root of the gateway: builds the real adapters and wires them into the server."""

from __future__ import annotations

from gateway.forwarding import Upstreams, forwarding_handler
from gateway.json_body_check import JsonBodyCheck
from gateway.openai_compat import OpenAiCompatServicer
from gateway.rate_limit_interceptor import RateLimitInterceptor
from gateway.rate_limits import RateLimiter
from gateway.server_info import ServerInfoServicer
from gateway.settings import GatewaySettings
from switchboard.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from switchboard_runtime.auth_interceptor import AuthInterceptor
from switchboard_runtime.contract import all_services, public_services
from switchboard_runtime.datastores import RedisStore, attach
from switchboard_runtime.identity_client import IdentityClient
from switchboard_runtime.server import ServiceApp
from switchboard_runtime.settings import settings_or_exit

#: Which internal service owns each public package.
OWNERS = {
    "switchboard.identity.v1": "identity",
    "switchboard.conversation.v1": "conversation",
    "switchboard.llm.v1": "llm-router",
    "switchboard.connectors.v1": "connectors",
}


def build_app(settings: GatewaySettings) -> ServiceApp:
    identity = IdentityClient.from_settings(settings)
    redis = RedisStore(settings.redis_url)
    rate_limits = RateLimitInterceptor(
        RateLimiter(redis),
        settings.rate_limit_buckets(),
        tenant_factor=settings.rate_limit_tenant_factor,
    )
    app = ServiceApp(
        name="gateway",
        settings=settings,
        extra_interceptors=[AuthInterceptor(identity), rate_limits],
    )
    attach(app, identity)
    attach(app, redis)
    upstreams = attach(
        app,
        Upstreams(
            {
                "identity": settings.identity_addr,
                "conversation": settings.conversation_addr,
                "llm-router": settings.llm_router_addr,
                "connectors": settings.connectors_addr,
            }
        ),
    )
    exposed = set(public_services())
    if settings.body_check_port:
        attach(
            app,
            JsonBodyCheck(
                (service for service in all_services() if service.full_name in exposed),
                host=settings.grpc_host,
                port=settings.body_check_port,
            ),
        )
    for service in all_services():
        owner = OWNERS.get(service.file.package)
        if owner is not None and service.full_name in exposed:
            app.add_generic_service(service, forwarding_handler(service, upstreams, owner))
    app.add_service(
        gateway_pb2_grpc.add_GatewayServiceServicer_to_server,
        ServerInfoServicer(version=settings.service_version, public_services=sorted(exposed)),
        gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"],
    )
    app.add_service(
        gateway_pb2_grpc.add_OpenAiCompatServiceServicer_to_server,
        OpenAiCompatServicer(upstreams),
        gateway_pb2.DESCRIPTOR.services_by_name["OpenAiCompatService"],
    )
    return app


def main() -> None:
    build_app(settings_or_exit(GatewaySettings)).run_forever()

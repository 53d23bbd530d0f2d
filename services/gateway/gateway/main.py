"""Composition root of the gateway: builds the real adapters and wires them into the server."""

from __future__ import annotations

from gateway.server_info import ServerInfoServicer
from gateway.settings import GatewaySettings
from switchboard.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from switchboard_runtime.auth_interceptor import AuthInterceptor
from switchboard_runtime.contract import public_services
from switchboard_runtime.datastores import RedisStore, attach
from switchboard_runtime.identity_client import IdentityClient
from switchboard_runtime.server import ServiceApp
from switchboard_runtime.settings import settings_or_exit


def build_app(settings: GatewaySettings) -> ServiceApp:
    identity = IdentityClient.from_settings(settings)
    app = ServiceApp(
        name="gateway", settings=settings, extra_interceptors=[AuthInterceptor(identity)]
    )
    attach(app, identity)
    attach(app, RedisStore(settings.redis_url))
    app.add_service(
        gateway_pb2_grpc.add_GatewayServiceServicer_to_server,
        ServerInfoServicer(version=settings.service_version, public_services=public_services()),
        gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"],
    )
    return app


def main() -> None:
    build_app(settings_or_exit(GatewaySettings)).run_forever()

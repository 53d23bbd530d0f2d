"""Composition root of the LLM router: builds the real adapters and wires them in."""

from __future__ import annotations

from llm_router.settings import RouterSettings
from switchboard.llm.v1 import llm_pb2
from switchboard_runtime.auth_interceptor import AuthInterceptor
from switchboard_runtime.datastores import RedisStore, attach
from switchboard_runtime.identity_client import IdentityClient
from switchboard_runtime.server import ServiceApp
from switchboard_runtime.settings import settings_or_exit


def build_app(settings: RouterSettings) -> ServiceApp:
    identity = IdentityClient.from_settings(settings)
    app = ServiceApp(
        name="llm-router", settings=settings, extra_interceptors=[AuthInterceptor(identity)]
    )
    attach(app, identity)
    attach(app, RedisStore(settings.redis_url))
    app.add_unimplemented(llm_pb2.DESCRIPTOR.services_by_name["LlmService"])
    return app


def main() -> None:
    build_app(settings_or_exit(RouterSettings)).run_forever()

"""Composition root of the LLM router: builds the real adapters and wires them in."""

from __future__ import annotations

import gc
import logging
import random
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from llm_router.breaker import BreakerBoard
from llm_router.clock import Clock, SystemClock
from llm_router.config import RouterConfig, load_config
from llm_router.errors import ConfigError
from llm_router.metrics import RouterMetrics
from llm_router.providers import build_provider
from llm_router.redis_store import RouterRedis
from llm_router.reload import ConfigReloader
from llm_router.router import Router
from llm_router.routing_table import ProviderFactory
from llm_router.servicer import LlmServicer
from llm_router.settings import RouterSettings
from llm_router.weights import WeightOverrides
from switchboard.llm.v1 import llm_pb2, llm_pb2_grpc
from switchboard_runtime.auth_interceptor import AuthInterceptor
from switchboard_runtime.datastores import attach
from switchboard_runtime.identity_client import IdentityClient
from switchboard_runtime.server import ServiceApp
from switchboard_runtime.settings import settings_or_exit


@dataclass(frozen=True)
class RouterService:
    """The app and the parts tests and benchmarks look into."""

    app: ServiceApp
    router: Router
    reloader: ConfigReloader


def build(
    settings: RouterSettings,
    *,
    config: RouterConfig | None = None,
    clock: Clock | None = None,
    provider_factory: ProviderFactory = build_provider,
    random_source: random.Random | None = None,
    environ: Mapping[str, str] | None = None,
) -> RouterService:
    """Wire the service. `config` defaults to the file named by the settings (or the built-in
    one); `environ` is where API key variables are read on reloads (default os.environ)."""
    if config is None:
        config = load_config(settings.llm_router_config, environ=environ)
    clock = clock or SystemClock()
    # The provider SDKs' transport logs every HTTP request at INFO: one line per attempt is
    # noise at this rate, and the access log and metrics already tell the story.
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    identity = IdentityClient.from_settings(settings)
    app = ServiceApp(
        name="llm-router", settings=settings, extra_interceptors=[AuthInterceptor(identity)]
    )
    attach(app, identity)
    store = attach(app, RouterRedis(settings.redis_url))
    metrics = RouterMetrics()
    breakers = BreakerBoard(
        lambda: store.client,
        key_prefix=settings.redis_key_prefix,
        clock=clock,
        on_transition=metrics.breaker_transition,
    )
    weights = WeightOverrides(lambda: store.client, key_prefix=settings.redis_key_prefix)
    router = Router(
        config,
        provider_factory=provider_factory,
        breakers=breakers,
        weights=weights,
        clock=clock,
        metrics=metrics,
        random_source=random_source,
    )
    app.add_startup(weights.refresh)
    # Before Redis closes: records left in the background still need it.
    app.add_shutdown(router.close)
    app.add_background(weights.run, name="weight-overrides")
    reloader = ConfigReloader(
        router.install, settings.llm_router_config, metrics=metrics, environ=environ
    )
    app.add_startup(reloader.start)
    app.add_shutdown(reloader.stop)
    app.add_service(
        llm_pb2_grpc.add_LlmServiceServicer_to_server,
        LlmServicer(router),
        llm_pb2.DESCRIPTOR.services_by_name["LlmService"],
    )
    return RouterService(app, router, reloader)


def build_app(settings: RouterSettings, **options: object) -> ServiceApp:
    return build(settings, **options).app  # type: ignore[arg-type]


async def _freeze_startup_objects() -> None:
    # Modules, descriptors, clients and pools made at startup live as long as the process;
    # moving them out of the collector's reach keeps every later collection small, which the
    # per-call CPU shows (a few percent on the hot path).
    gc.freeze()


def main() -> None:
    settings = settings_or_exit(RouterSettings)
    try:
        config = load_config(settings.llm_router_config)
    except ConfigError as error:
        print(f"llm-router: invalid config: {error}", file=sys.stderr, flush=True)
        sys.exit(2)
    app = build(settings, config=config).app
    app.add_startup(_freeze_startup_objects)  # last: after everything else has started
    app.run_forever()

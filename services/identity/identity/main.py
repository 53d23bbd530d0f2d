"""Composition root of the identity service: builds the real adapters and wires them in."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from identity.accounts import Accounts
from identity.api_keys import ApiKeys
from identity.authentication import LocalAuthenticator
from identity.domain import ThrottlePolicy
from identity.key_ring import KeyRing
from identity.passwords import PasswordHasher
from identity.service_tokens import ServiceTokens
from identity.servicer import IdentityServicer
from identity.sessions import SessionPolicy, Sessions
from identity.settings import IdentitySettings
from identity.signing_keys import KeyCipher
from switchboard.identity.v1 import identity_pb2, identity_pb2_grpc
from switchboard_runtime.access_tokens import TokenAudience, TokenVerifier
from switchboard_runtime.auth_interceptor import AuthInterceptor
from switchboard_runtime.clock import Clock, SystemClock
from switchboard_runtime.datastores import JetStreamBus, PostgresDatabase, attach
from switchboard_runtime.event_streams import IDENTITY
from switchboard_runtime.outbox import OutboxRelay
from switchboard_runtime.postgres import migration_lock_id
from switchboard_runtime.server import ServiceApp
from switchboard_runtime.settings import settings_or_exit

MIGRATIONS = Path(__file__).parent / "migrations"
#: Seconds other services may cache an Authenticate answer for an API key: how long a revoked
#: key can still work through them.
API_KEY_CACHE_TTL_SECONDS = 5


def build_app(settings: IdentitySettings, *, clock: Clock | None = None) -> ServiceApp:
    clock = clock or SystemClock()
    database = PostgresDatabase(settings.database_url, migrations=MIGRATIONS)
    bus = JetStreamBus(settings.nats_url, client_name="identity", streams=[IDENTITY])
    audience = TokenAudience(issuer=settings.token_issuer, audience=settings.token_audience)
    access_ttl = timedelta(seconds=settings.access_token_ttl_seconds)
    service_ttl = timedelta(seconds=settings.service_token_ttl_seconds)
    keys = KeyRing(
        database,
        KeyCipher(settings.key_encryption_key()),
        audience=audience,
        clock=clock,
        max_token_ttl=max(access_ttl, service_ttl),
        activation_delay=timedelta(seconds=settings.signing_key_activation_delay_seconds),
    )
    hasher = PasswordHasher(
        time_cost=settings.password_hash_time_cost,
        memory_kib=settings.password_hash_memory_kib,
        parallelism=settings.password_hash_parallelism,
    )
    sessions = Sessions(
        database,
        keys=keys,
        hasher=hasher,
        clock=clock,
        policy=SessionPolicy(
            access_token_ttl=access_ttl,
            refresh_token_ttl=timedelta(seconds=settings.refresh_token_ttl_seconds),
            session_max_age=timedelta(seconds=settings.session_max_age_seconds),
            throttle=ThrottlePolicy(
                slow_after=settings.login_slow_after_failures,
                lock_after=settings.login_lock_after_failures,
                lock=timedelta(seconds=settings.login_lock_seconds),
            ),
        ),
    )
    api_keys = ApiKeys(database, clock=clock)
    # The JWKS is a local query here, so a new kid can be looked up at once.
    verifier = TokenVerifier(keys.jwks, audience=audience, refresh_interval_seconds=0)
    authenticator = LocalAuthenticator(verifier, api_keys)

    app = ServiceApp(
        name="identity", settings=settings, extra_interceptors=[AuthInterceptor(authenticator)]
    )
    attach(app, database)
    attach(app, bus)
    app.add_startup(keys.ensure_active_key)
    app.add_background(
        lambda: OutboxRelay(
            database.pool, bus.jetstream, lock_id=migration_lock_id("identity-outbox")
        ).run(),
        name="outbox-relay",
    )
    servicer = IdentityServicer(
        accounts=Accounts(database, hasher=hasher, sessions=sessions, clock=clock),
        sessions=sessions,
        api_keys=api_keys,
        service_tokens=ServiceTokens(
            database,
            keys=keys,
            clock=clock,
            client_secrets=settings.service_secrets(),
            ttl=service_ttl,
        ),
        keys=keys,
        authenticator=authenticator,
        api_key_cache_ttl_seconds=API_KEY_CACHE_TTL_SECONDS,
    )
    app.add_service(
        identity_pb2_grpc.add_IdentityServiceServicer_to_server,
        servicer,
        identity_pb2.DESCRIPTOR.services_by_name["IdentityService"],
    )
    return app


def main() -> None:
    build_app(settings_or_exit(IdentitySettings)).run_forever()

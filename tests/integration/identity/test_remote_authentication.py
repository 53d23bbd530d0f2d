"""Other services verify callers with identity's JWKS offline and API keys through identity."""

from __future__ import annotations

import grpc
import pytest

from switchboard.identity.v1 import identity_pb2
from switchboard_runtime.access_tokens import TokenAudience
from switchboard_runtime.auth_interceptor import InvalidCredentialError
from switchboard_runtime.principal import PrincipalKind, Role
from switchboard_runtime.remote_auth import RemoteAuthenticator, ServiceTokenSource
from tests.identity_fixtures import SERVICE_SECRET, IdentityUnderTest, bearer


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _remote(identity: IdentityUnderTest, monotonic: FakeMonotonic) -> RemoteAuthenticator:
    tokens = ServiceTokenSource(
        identity.stub, service_name="conversation", client_secret=SERVICE_SECRET
    )
    return RemoteAuthenticator(identity.stub, tokens, audience=TokenAudience(), monotonic=monotonic)


async def test_a_user_token_is_verified_offline_with_the_published_keys(
    identity: IdentityUnderTest,
) -> None:
    signed_up = await identity.sign_up()
    remote = _remote(identity, FakeMonotonic())
    principal = await remote.authenticate(signed_up.tokens.access_token)
    assert principal.kind is PrincipalKind.USER
    assert principal.role is Role.OWNER
    assert principal.tenant_id == signed_up.tenant.tenant_id
    with pytest.raises(InvalidCredentialError):
        await remote.authenticate(signed_up.tokens.access_token[:-4] + "AAAA")


async def test_a_revoked_api_key_stops_working_once_the_short_cache_expires(
    identity: IdentityUnderTest,
) -> None:
    signed_up = await identity.sign_up()
    created = await identity.stub.CreateApiKey(
        identity_pb2.CreateApiKeyRequest(name="bot", scopes=["llm:complete"]),
        metadata=bearer(signed_up.tokens.access_token),
    )
    monotonic = FakeMonotonic()
    remote = _remote(identity, monotonic)
    principal = await remote.authenticate(created.secret)
    assert principal.kind is PrincipalKind.API_KEY
    assert principal.scopes == frozenset({"llm:complete"})
    await identity.stub.RevokeApiKey(
        identity_pb2.RevokeApiKeyRequest(api_key_id=created.api_key.api_key_id),
        metadata=bearer(signed_up.tokens.access_token),
    )
    assert (await remote.authenticate(created.secret)).subject == principal.subject  # cached
    monotonic.now += 6  # identity allows 5 s of caching
    with pytest.raises(InvalidCredentialError):
        await remote.authenticate(created.secret)


async def test_an_unknown_api_key_is_invalid_not_unavailable(identity: IdentityUnderTest) -> None:
    remote = _remote(identity, FakeMonotonic())
    with pytest.raises(InvalidCredentialError):
        await remote.authenticate("sbk_000000000000_" + "x" * 43)


async def test_service_tokens_are_reused_until_close_to_expiry(identity: IdentityUnderTest) -> None:
    tokens = ServiceTokenSource(
        identity.stub, service_name="conversation", client_secret=SERVICE_SECRET
    )
    first = await tokens.token(scopes=["identity:authenticate"])
    assert await tokens.token(scopes=["identity:authenticate"]) == first
    with pytest.raises(grpc.aio.AioRpcError):
        await ServiceTokenSource(
            identity.stub, service_name="conversation", client_secret="wrong-secret-123456"
        ).token(scopes=[])

"""Access tokens that are forged, tampered, stale or meant for someone else are refused."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from switchboard.identity.v1 import identity_pb2
from switchboard_runtime.clock import ManualClock
from tests.identity_fixtures import (
    PASSWORD,
    SERVICE_SECRET,
    IdentityUnderTest,
    bearer,
)
from tests.integration.identity.tokens import (
    claims_of,
    fresh_claims,
    header_of,
    hs256_with,
    real_signing_key,
    sign,
    unsigned,
    with_claims,
)


async def _me(identity: IdentityUnderTest, token: str) -> identity_pb2.GetMeResponse:
    response: identity_pb2.GetMeResponse = await identity.stub.GetMe(
        identity_pb2.GetMeRequest(), metadata=bearer(token)
    )
    return response


async def _assert_refused(identity: IdentityUnderTest, token: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _me(identity, token)
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert raised.value.details() == "invalid or expired credentials"


async def test_a_call_without_credentials_is_unauthenticated(identity: IdentityUnderTest) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await identity.stub.GetMe(identity_pb2.GetMeRequest())
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_the_access_token_carries_the_claims_services_rely_on(
    identity: IdentityUnderTest,
) -> None:
    signed_up = await identity.sign_up()
    token = signed_up.tokens.access_token
    claims = claims_of(token)
    assert header_of(token)["alg"] == "EdDSA"
    assert header_of(token)["kid"]
    assert claims["iss"] == "switchboard-identity"
    assert claims["aud"] == "switchboard"
    assert claims["sub"] == signed_up.user.user_id
    assert claims["tid"] == signed_up.tenant.tenant_id
    assert claims["role"] == "owner"
    assert "users:write" in claims["scope"].split()
    assert claims["jti"]
    assert 14 * 60 <= claims["exp"] - claims["iat"] <= 15 * 60


async def test_a_token_with_alg_none_is_refused(identity: IdentityUnderTest) -> None:
    token = (await identity.sign_up()).tokens.access_token
    await _assert_refused(
        identity,
        unsigned({"alg": "none", "typ": "JWT", "kid": header_of(token)["kid"]}, claims_of(token)),
    )


async def test_a_token_signed_with_hs256_using_the_public_key_is_refused(
    identity: IdentityUnderTest,
) -> None:
    token = (await identity.sign_up()).tokens.access_token
    kid, _, public_key = await real_signing_key(identity.settings)
    jwks = await identity.stub.GetJwks(identity_pb2.GetJwksRequest())
    published_x = next(key.x for key in jwks.keys if key.kid == kid)
    for secret in (public_key, published_x.encode()):
        await _assert_refused(identity, hs256_with(secret, header_of(token), claims_of(token)))


async def test_a_token_with_an_unknown_kid_is_refused(identity: IdentityUnderTest) -> None:
    token = (await identity.sign_up()).tokens.access_token
    stranger = Ed25519PrivateKey.generate()
    await _assert_refused(
        identity, sign(stranger, "not-a-key-of-ours", fresh_claims(claims_of(token)))
    )


async def test_a_token_signed_by_another_key_under_our_kid_is_refused(
    identity: IdentityUnderTest,
) -> None:
    token = (await identity.sign_up()).tokens.access_token
    stranger = Ed25519PrivateKey.generate()
    kid = header_of(token)["kid"]
    await _assert_refused(identity, sign(stranger, kid, fresh_claims(claims_of(token))))


async def test_a_tampered_payload_is_refused(identity: IdentityUnderTest) -> None:
    signed_up = await identity.sign_up()
    member = await identity.stub.CreateUser(
        identity_pb2.CreateUserRequest(
            email="m@acme.test", password="member password 123", display_name="M", role=1
        ),
        metadata=bearer(signed_up.tokens.access_token),
    )
    login = await identity.stub.Login(
        identity_pb2.LoginRequest(
            tenant_slug=signed_up.tenant.slug, email="m@acme.test", password="member password 123"
        )
    )
    assert member.user.user_id == login.user.user_id
    await _assert_refused(identity, with_claims(login.tokens.access_token, role="owner"))


@pytest.mark.parametrize(
    "changes",
    [
        {"aud": "someone-else"},
        {"iss": "https://evil.example"},
        {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 4000},
        {"nbf": int(time.time()) + 3600},
    ],
    ids=["wrong audience", "wrong issuer", "expired", "not yet valid"],
)
async def test_a_correctly_signed_token_with_bad_claims_is_refused(
    identity: IdentityUnderTest, changes: dict[str, Any]
) -> None:
    token = (await identity.sign_up()).tokens.access_token
    kid, private_key, _ = await real_signing_key(identity.settings)
    # The same key, correctly signed: only the claims are wrong.
    assert (await _me(identity, sign(private_key, kid, fresh_claims(claims_of(token))))).user
    await _assert_refused(
        identity, sign(private_key, kid, fresh_claims(claims_of(token), **changes))
    )


async def test_a_token_issued_more_than_its_lifetime_ago_is_refused(
    start_identity: Callable[..., Any],
) -> None:
    clock = ManualClock(datetime.now(UTC) - timedelta(minutes=16))
    identity: IdentityUnderTest = await start_identity(clock=clock)
    stale = (await identity.sign_up()).tokens.access_token
    clock.advance(timedelta(minutes=16))
    await _assert_refused(identity, stale)


async def test_a_rotated_key_is_published_before_it_signs_and_old_tokens_stay_valid(
    start_identity: Callable[..., Any],
) -> None:
    # Tokens are checked against real time: start in the past so that moving the clock past
    # the activation delay lands on the present.
    delay = timedelta(seconds=60)
    identity: IdentityUnderTest = await start_identity(
        clock=ManualClock(datetime.now(UTC) - delay),
        signing_key_activation_delay_seconds=int(delay.total_seconds()),
    )
    signed_up = await identity.sign_up()
    old_token = signed_up.tokens.access_token
    old_kid = header_of(old_token)["kid"]
    service = await identity.stub.IssueServiceToken(
        identity_pb2.IssueServiceTokenRequest(
            service_name="conversation",
            client_secret=SERVICE_SECRET,
            scopes=["identity:operate"],
        )
    )
    rotated = await identity.stub.RotateSigningKey(
        identity_pb2.RotateSigningKeyRequest(), metadata=bearer(service.access_token)
    )
    assert rotated.kid != old_kid
    jwks = await identity.stub.GetJwks(identity_pb2.GetJwksRequest())
    assert {key.kid for key in jwks.keys} == {rotated.kid, old_kid}
    assert all(key.kty == "OKP" and key.crv == "Ed25519" for key in jwks.keys)
    # Published, not yet signing.
    assert header_of((await _login(identity, signed_up)).tokens.access_token)["kid"] == old_kid

    identity.clock.advance(
        timedelta(seconds=identity.settings.signing_key_activation_delay_seconds)
    )
    new_token = (await _login(identity, signed_up)).tokens.access_token
    assert header_of(new_token)["kid"] == rotated.kid
    assert (await _me(identity, new_token)).user.user_id == signed_up.user.user_id
    assert (await _me(identity, old_token)).user.user_id == signed_up.user.user_id


async def _login(
    identity: IdentityUnderTest, signed_up: identity_pb2.SignUpResponse
) -> identity_pb2.LoginResponse:
    response: identity_pb2.LoginResponse = await identity.stub.Login(
        identity_pb2.LoginRequest(
            tenant_slug=signed_up.tenant.slug, email=signed_up.user.email, password=PASSWORD
        )
    )
    return response

"""Refresh tokens are single use; a reused one ends its whole session; logout ends it too."""

from __future__ import annotations

import grpc
import pytest

from switchboard.identity.v1 import identity_pb2
from tests.identity_fixtures import PASSWORD, IdentityUnderTest, bearer


async def _refresh(identity: IdentityUnderTest, token: str) -> identity_pb2.RefreshTokenResponse:
    response: identity_pb2.RefreshTokenResponse = await identity.stub.RefreshToken(
        identity_pb2.RefreshTokenRequest(refresh_token=token)
    )
    return response


async def _assert_refused(identity: IdentityUnderTest, token: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _refresh(identity, token)
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_refreshing_returns_a_new_pair_and_the_old_refresh_token_is_spent(
    identity: IdentityUnderTest,
) -> None:
    first = (await identity.sign_up()).tokens
    second = (await _refresh(identity, first.refresh_token)).tokens
    assert second.refresh_token != first.refresh_token
    assert second.access_token != first.access_token
    me = await identity.stub.GetMe(
        identity_pb2.GetMeRequest(), metadata=bearer(second.access_token)
    )
    assert me.user.email == "owner@acme.test"


async def test_a_reused_refresh_token_revokes_the_whole_family(identity: IdentityUnderTest) -> None:
    first = (await identity.sign_up()).tokens
    second = (await _refresh(identity, first.refresh_token)).tokens
    await _assert_refused(identity, first.refresh_token)  # the thief (or the victim) replays
    await _assert_refused(identity, second.refresh_token)  # the rest of the family is dead


async def test_other_sessions_survive_a_reuse_in_one_session(identity: IdentityUnderTest) -> None:
    signed_up = await identity.sign_up()
    other = await identity.stub.Login(
        identity_pb2.LoginRequest(
            tenant_slug=signed_up.tenant.slug, email="owner@acme.test", password=PASSWORD
        )
    )
    await _refresh(identity, signed_up.tokens.refresh_token)
    await _assert_refused(identity, signed_up.tokens.refresh_token)
    assert (await _refresh(identity, other.tokens.refresh_token)).tokens.access_token


async def test_logout_ends_the_session(identity: IdentityUnderTest) -> None:
    tokens = (await identity.sign_up()).tokens
    await identity.stub.Logout(
        identity_pb2.LogoutRequest(refresh_token=tokens.refresh_token),
        metadata=bearer(tokens.access_token),
    )
    await _assert_refused(identity, tokens.refresh_token)


async def test_a_deactivated_user_cannot_refresh(identity: IdentityUnderTest) -> None:
    owner = await identity.sign_up()
    admin_token = owner.tokens.access_token
    await identity.stub.CreateUser(
        identity_pb2.CreateUserRequest(
            email="leaver@acme.test", password="leaver password 1", display_name="L", role=1
        ),
        metadata=bearer(admin_token),
    )
    leaver = await identity.stub.Login(
        identity_pb2.LoginRequest(
            tenant_slug=owner.tenant.slug, email="leaver@acme.test", password="leaver password 1"
        )
    )
    await identity.stub.DeactivateUser(
        identity_pb2.DeactivateUserRequest(user_id=leaver.user.user_id),
        metadata=bearer(admin_token),
    )
    await _assert_refused(identity, leaver.tokens.refresh_token)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await identity.stub.Login(
            identity_pb2.LoginRequest(
                tenant_slug=owner.tenant.slug,
                email="leaver@acme.test",
                password="leaver password 1",
            )
        )
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_an_unknown_refresh_token_is_refused(identity: IdentityUnderTest) -> None:
    await _assert_refused(identity, "sbr_" + "A" * 43)

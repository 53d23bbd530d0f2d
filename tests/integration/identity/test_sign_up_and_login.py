"""Signing up creates a tenant and its owner; signing in never says whether an email exists."""

from __future__ import annotations

from switchboard.access.v1 import access_pb2
from switchboard.identity.v1 import identity_pb2
from tests.identity_fixtures import PASSWORD, IdentityUnderTest, bearer


async def test_sign_up_creates_a_tenant_whose_owner_is_signed_in(
    identity: IdentityUnderTest,
) -> None:
    signed_up = await identity.sign_up(display_name="Olive")
    assert signed_up.user.role == access_pb2.ROLE_OWNER
    assert signed_up.tokens.token_type == "Bearer"
    me = await identity.stub.GetMe(
        identity_pb2.GetMeRequest(), metadata=bearer(signed_up.tokens.access_token)
    )
    assert me.user.user_id == signed_up.user.user_id
    assert me.tenant.slug == signed_up.tenant.slug
    assert me.principal.tenant_id == signed_up.tenant.tenant_id
    assert "users:write" in me.principal.scopes


async def test_login_with_the_right_password_returns_a_working_token_pair(
    identity: IdentityUnderTest,
) -> None:
    signed_up = await identity.sign_up()
    login = await identity.stub.Login(
        identity_pb2.LoginRequest(
            tenant_slug=signed_up.tenant.slug, email="OWNER@acme.test", password=PASSWORD
        )
    )
    assert login.user.user_id == signed_up.user.user_id
    me = await identity.stub.GetMe(
        identity_pb2.GetMeRequest(), metadata=bearer(login.tokens.access_token)
    )
    assert me.user.email == "owner@acme.test"

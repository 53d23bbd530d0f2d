"""Bad input gets INVALID_ARGUMENT naming each bad field, and writes nothing."""

from __future__ import annotations

from typing import Any

import asyncpg
import grpc
import pytest

from switchboard.identity.v1 import identity_pb2
from switchboard_runtime.grpc_errors import field_violations_of
from tests.identity_fixtures import IdentityUnderTest, bearer

GOOD_SIGN_UP: dict[str, Any] = {
    "tenant_name": "Acme",
    "tenant_slug": "acme-bad-input",
    "email": "owner@acme.test",
    "password": "a long enough password",
    "display_name": "Olive",
}


async def _counts(identity: IdentityUnderTest) -> tuple[int, int]:
    conn = await asyncpg.connect(identity.database_url)
    try:
        tenants = await conn.fetchval("SELECT count(*) FROM tenants")
        users = await conn.fetchval("SELECT count(*) FROM users")
    finally:
        await conn.close()
    return tenants, users


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"email": "not-an-email"}, ["email"]),
        ({"password": "short"}, ["password"]),
        ({"display_name": "x" * 201}, ["display_name"]),
        ({"tenant_slug": "Not A Slug"}, ["tenant_slug"]),
        ({"email": "", "password": "", "tenant_name": ""}, ["tenant_name", "email", "password"]),
    ],
    ids=["malformed email", "short password", "oversized name", "bad slug", "several fields"],
)
async def test_a_bad_sign_up_names_every_bad_field_and_creates_nothing(
    identity: IdentityUnderTest, changes: dict[str, Any], fields: list[str]
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await identity.stub.SignUp(identity_pb2.SignUpRequest(**(GOOD_SIGN_UP | changes)))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(field for field, _ in field_violations_of(raised.value)) == sorted(fields)
    assert await _counts(identity) == (0, 0)


async def test_an_unknown_role_is_invalid_and_creates_no_user(identity: IdentityUnderTest) -> None:
    owner = await identity.sign_up()
    before = await _counts(identity)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await identity.stub.CreateUser(
            identity_pb2.CreateUserRequest(
                email="x@acme.test", password="a long enough password", display_name="X", role=42
            ),
            metadata=bearer(owner.tokens.access_token),
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in field_violations_of(raised.value)] == ["role"]
    assert await _counts(identity) == before


async def test_a_taken_slug_or_email_is_already_exists_and_writes_nothing(
    identity: IdentityUnderTest,
) -> None:
    owner = await identity.sign_up()
    before = await _counts(identity)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await identity.sign_up(tenant_slug=owner.tenant.slug, email="other@acme.test")
    assert raised.value.code() == grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await identity.stub.CreateUser(
            identity_pb2.CreateUserRequest(
                email="OWNER@acme.test",
                password="a long enough password",
                display_name="X",
                role=1,
            ),
            metadata=bearer(owner.tokens.access_token),
        )
    assert raised.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert await _counts(identity) == before

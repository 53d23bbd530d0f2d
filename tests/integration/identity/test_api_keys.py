"""API keys: a secret shown once, stored hashed, scoped, expiring, revocable at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from switchboard.identity.v1 import identity_pb2
from tests.identity_fixtures import IdentityUnderTest, bearer


async def _create_key(
    identity: IdentityUnderTest, token: str, scopes: list[str], expire_time: datetime | None = None
) -> identity_pb2.CreateApiKeyResponse:
    request = identity_pb2.CreateApiKeyRequest(name="ci", scopes=scopes)
    if expire_time is not None:
        stamp = Timestamp()
        stamp.FromDatetime(expire_time)
        request.expire_time.CopyFrom(stamp)
    response: identity_pb2.CreateApiKeyResponse = await identity.stub.CreateApiKey(
        request, metadata=bearer(token)
    )
    return response


async def test_an_api_key_authenticates_with_exactly_its_scopes(
    identity: IdentityUnderTest,
) -> None:
    owner = await identity.sign_up()
    created = await _create_key(identity, owner.tokens.access_token, ["users:read", "bots:read"])
    assert created.secret.startswith(created.api_key.prefix + "_")
    assert created.api_key.prefix.startswith("sbk_")
    me = await identity.stub.GetMe(identity_pb2.GetMeRequest(), metadata=bearer(created.secret))
    assert me.principal.kind == identity_pb2.PRINCIPAL_KIND_API_KEY
    assert me.principal.tenant_id == owner.tenant.tenant_id
    assert sorted(me.principal.scopes) == ["bots:read", "users:read"]
    users = await identity.stub.ListUsers(
        identity_pb2.ListUsersRequest(), metadata=bearer(created.secret)
    )
    assert [user.email for user in users.users] == ["owner@acme.test"]


async def test_a_key_without_the_scope_is_denied(identity: IdentityUnderTest) -> None:
    owner = await identity.sign_up()
    created = await _create_key(identity, owner.tokens.access_token, ["users:read"])
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await identity.stub.CreateUser(
            identity_pb2.CreateUserRequest(
                email="x@acme.test", password="a long password", display_name="X", role=1
            ),
            metadata=bearer(created.secret),
        )
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "users:write" in (raised.value.details() or "")


async def test_the_secret_is_stored_only_as_a_hash_and_never_listed(
    identity: IdentityUnderTest,
) -> None:
    owner = await identity.sign_up()
    created = await _create_key(identity, owner.tokens.access_token, ["users:read"])
    listed = await identity.stub.ListApiKeys(
        identity_pb2.ListApiKeysRequest(), metadata=bearer(owner.tokens.access_token)
    )
    assert [key.api_key_id for key in listed.api_keys] == [created.api_key.api_key_id]
    assert created.secret not in str(listed)
    conn = await asyncpg.connect(identity.database_url)
    try:
        dump = str(await conn.fetch("SELECT * FROM api_keys"))
    finally:
        await conn.close()
    secret_part = created.secret.rsplit("_", 1)[1]
    assert secret_part not in dump


async def test_a_revoked_key_stops_working_at_once(identity: IdentityUnderTest) -> None:
    owner = await identity.sign_up()
    created = await _create_key(identity, owner.tokens.access_token, ["users:read"])
    await identity.stub.GetMe(identity_pb2.GetMeRequest(), metadata=bearer(created.secret))
    revoked = await identity.stub.RevokeApiKey(
        identity_pb2.RevokeApiKeyRequest(api_key_id=created.api_key.api_key_id),
        metadata=bearer(owner.tokens.access_token),
    )
    assert revoked.api_key.HasField("revoke_time")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await identity.stub.GetMe(identity_pb2.GetMeRequest(), metadata=bearer(created.secret))
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_an_expired_key_is_refused(identity: IdentityUnderTest) -> None:
    owner = await identity.sign_up()
    created = await _create_key(
        identity,
        owner.tokens.access_token,
        ["users:read"],
        expire_time=datetime.now(UTC) + timedelta(hours=1),
    )
    await identity.stub.GetMe(identity_pb2.GetMeRequest(), metadata=bearer(created.secret))
    identity.clock.advance(timedelta(hours=1, seconds=1))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await identity.stub.GetMe(identity_pb2.GetMeRequest(), metadata=bearer(created.secret))
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_key_with_a_wrong_secret_is_refused(identity: IdentityUnderTest) -> None:
    owner = await identity.sign_up()
    created = await _create_key(identity, owner.tokens.access_token, ["users:read"])
    forged = created.api_key.prefix + "_" + "x" * 43
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await identity.stub.GetMe(identity_pb2.GetMeRequest(), metadata=bearer(forged))
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_last_used_time_is_recorded(identity: IdentityUnderTest) -> None:
    owner = await identity.sign_up()
    created = await _create_key(identity, owner.tokens.access_token, ["users:read"])
    assert not created.api_key.HasField("last_used_time")
    await identity.stub.GetMe(identity_pb2.GetMeRequest(), metadata=bearer(created.secret))
    listed = await identity.stub.ListApiKeys(
        identity_pb2.ListApiKeysRequest(), metadata=bearer(owner.tokens.access_token)
    )
    assert listed.api_keys[0].HasField("last_used_time")


@pytest.mark.parametrize(
    ("scopes", "code"),
    [
        (["users:fly"], grpc.StatusCode.INVALID_ARGUMENT),
        (["llm:operate"], grpc.StatusCode.INVALID_ARGUMENT),
    ],
    ids=["unknown scope", "service-only scope"],
)
async def test_keys_cannot_carry_scopes_users_cannot_grant(
    identity: IdentityUnderTest, scopes: list[str], code: grpc.StatusCode
) -> None:
    owner = await identity.sign_up()
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _create_key(identity, owner.tokens.access_token, scopes)
    assert raised.value.code() == code
    listed = await identity.stub.ListApiKeys(
        identity_pb2.ListApiKeysRequest(include_revoked=True),
        metadata=bearer(owner.tokens.access_token),
    )
    assert list(listed.api_keys) == []

"""Passwords are argon2id hashes, rehashed when the cost changes, never logged; services
prove themselves with client secrets; events reach NATS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
import grpc
import nats
import pytest

from switchboard.identity.v1 import events_pb2, identity_pb2
from tests.identity_fixtures import (
    PASSWORD,
    SERVICE_SECRET,
    IdentityUnderTest,
    bearer,
)


async def _password_hash(identity: IdentityUnderTest) -> str:
    conn = await asyncpg.connect(identity.database_url)
    try:
        value: str = await conn.fetchval("SELECT password_hash FROM users")
    finally:
        await conn.close()
    return value


async def test_passwords_are_stored_as_argon2id_hashes_and_never_logged(
    identity: IdentityUnderTest, capfd: pytest.CaptureFixture[str]
) -> None:
    signed_up = await identity.sign_up()
    await identity.stub.Login(
        identity_pb2.LoginRequest(
            tenant_slug=signed_up.tenant.slug, email="owner@acme.test", password=PASSWORD
        )
    )
    stored = await _password_hash(identity)
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    out, err = capfd.readouterr()
    assert PASSWORD not in out + err
    assert signed_up.tokens.refresh_token not in out + err


async def test_a_login_rehashes_a_password_hashed_with_old_parameters(
    start_identity: Callable[..., Any],
) -> None:
    cheap: IdentityUnderTest = await start_identity()
    signed_up = await cheap.sign_up()
    old_hash = await _password_hash(cheap)
    await cheap.app.stop()
    stronger: IdentityUnderTest = await start_identity(password_hash_time_cost=2)
    await stronger.stub.Login(
        identity_pb2.LoginRequest(
            tenant_slug=signed_up.tenant.slug, email="owner@acme.test", password=PASSWORD
        )
    )
    new_hash = await _password_hash(stronger)
    assert new_hash != old_hash
    assert ",t=2," in new_hash and ",t=1," in old_hash


async def test_a_service_with_its_secret_gets_a_token_scoped_to_one_tenant(
    identity: IdentityUnderTest,
) -> None:
    signed_up = await identity.sign_up()
    issued = await identity.stub.IssueServiceToken(
        identity_pb2.IssueServiceTokenRequest(
            service_name="conversation",
            client_secret=SERVICE_SECRET,
            tenant_id=signed_up.tenant.tenant_id,
            scopes=["users:read", "identity:authenticate"],
        )
    )
    me = await identity.stub.GetMe(
        identity_pb2.GetMeRequest(), metadata=bearer(issued.access_token)
    )
    assert me.principal.kind == identity_pb2.PRINCIPAL_KIND_SERVICE
    assert me.principal.tenant_id == signed_up.tenant.tenant_id
    authenticated = await identity.stub.Authenticate(
        identity_pb2.AuthenticateRequest(access_token=signed_up.tokens.access_token),
        metadata=bearer(issued.access_token),
    )
    assert authenticated.principal.subject == signed_up.user.user_id


async def test_a_wrong_client_secret_gets_no_token(identity: IdentityUnderTest) -> None:
    for name, secret in [("conversation", "wrong-secret-0123456789"), ("nobody", SERVICE_SECRET)]:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await identity.stub.IssueServiceToken(
                identity_pb2.IssueServiceTokenRequest(service_name=name, client_secret=secret)
            )
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_users_cannot_call_internal_methods(identity: IdentityUnderTest) -> None:
    signed_up = await identity.sign_up()
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await identity.stub.Authenticate(
            identity_pb2.AuthenticateRequest(access_token=signed_up.tokens.access_token),
            metadata=bearer(signed_up.tokens.access_token),
        )
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_user_lifecycle_events_reach_jetstream(
    identity: IdentityUnderTest, nats_url: str
) -> None:
    signed_up = await identity.sign_up()
    tenant_id = signed_up.tenant.tenant_id
    created = await identity.stub.CreateUser(
        identity_pb2.CreateUserRequest(
            email="m@acme.test", password="member password 1", display_name="M", role=1
        ),
        metadata=bearer(signed_up.tokens.access_token),
    )
    user_id = created.user.user_id
    await identity.stub.SetUserRole(
        identity_pb2.SetUserRoleRequest(user_id=user_id, role=2),
        metadata=bearer(signed_up.tokens.access_token),
    )
    await identity.stub.DeactivateUser(
        identity_pb2.DeactivateUserRequest(user_id=user_id),
        metadata=bearer(signed_up.tokens.access_token),
    )
    client = await nats.connect(nats_url)
    try:
        js = client.jetstream()
        seen: dict[str, list[Any]] = {
            "user_created": [],
            "user_role_changed": [],
            "user_deactivated": [],
        }
        decoders = {
            "user_created": events_pb2.UserCreatedEvent,
            "user_role_changed": events_pb2.UserRoleChangedEvent,
            "user_deactivated": events_pb2.UserDeactivatedEvent,
        }
        for name, decoder in decoders.items():
            subscription = await js.subscribe(f"identity.v1.{name}", ordered_consumer=True)
            while not any(event.tenant_id == tenant_id for event in seen[name]) or (
                name == "user_created"
                and len([e for e in seen[name] if e.tenant_id == tenant_id]) < 2
            ):
                message = await subscription.next_msg(timeout=10)
                seen[name].append(decoder.FromString(message.data))
            await subscription.unsubscribe()
    finally:
        await client.close()
    mine = {name: [e for e in events if e.tenant_id == tenant_id] for name, events in seen.items()}
    assert {e.user.email for e in mine["user_created"]} == {"owner@acme.test", "m@acme.test"}
    assert [(e.user_id, e.old_role, e.new_role) for e in mine["user_role_changed"]] == [
        (user_id, 1, 2)
    ]
    assert [e.user_id for e in mine["user_deactivated"]] == [user_id]
    assert mine["user_deactivated"][0].actor_user_id == signed_up.user.user_id

"""Roles bound what users may do, tenants never see each other, and a tenant keeps an owner."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg
import grpc
import pytest

from switchboard.access.v1 import access_pb2
from switchboard.identity.v1 import identity_pb2
from tests.identity_fixtures import IdentityUnderTest, bearer


@dataclass
class Tenant:
    owner: identity_pb2.SignUpResponse
    admin_token: str
    admin_id: str
    member_token: str
    member_id: str

    @property
    def owner_token(self) -> str:
        return self.owner.tokens.access_token


async def _user_with_role(
    identity: IdentityUnderTest, owner: identity_pb2.SignUpResponse, email: str, role: int
) -> tuple[str, str]:
    created = await identity.stub.CreateUser(
        identity_pb2.CreateUserRequest(
            email=email, password="a decent password", display_name=email, role=role
        ),
        metadata=bearer(owner.tokens.access_token),
    )
    login = await identity.stub.Login(
        identity_pb2.LoginRequest(
            tenant_slug=owner.tenant.slug, email=email, password="a decent password"
        )
    )
    return login.tokens.access_token, created.user.user_id


async def _tenant(identity: IdentityUnderTest) -> Tenant:
    owner = await identity.sign_up()
    admin_token, admin_id = await _user_with_role(identity, owner, "admin@acme.test", 2)
    member_token, member_id = await _user_with_role(identity, owner, "member@acme.test", 1)
    return Tenant(owner, admin_token, admin_id, member_token, member_id)


async def _code(call: object) -> grpc.StatusCode:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def _users_table(identity: IdentityUnderTest) -> list[tuple[str, int, bool]]:
    conn = await asyncpg.connect(identity.database_url)
    try:
        rows = await conn.fetch("SELECT email, role, active FROM users ORDER BY email")
    finally:
        await conn.close()
    return [(row["email"], row["role"], row["active"]) for row in rows]


async def test_a_member_cannot_change_roles_or_create_users(identity: IdentityUnderTest) -> None:
    tenant = await _tenant(identity)
    before = await _users_table(identity)
    assert (
        await _code(
            identity.stub.SetUserRole(
                identity_pb2.SetUserRoleRequest(
                    user_id=tenant.member_id, role=access_pb2.ROLE_ADMIN
                ),
                metadata=bearer(tenant.member_token),
            )
        )
        == grpc.StatusCode.PERMISSION_DENIED
    )
    assert (
        await _code(
            identity.stub.CreateUser(
                identity_pb2.CreateUserRequest(
                    email="new@acme.test", password="a decent password", display_name="N", role=1
                ),
                metadata=bearer(tenant.member_token),
            )
        )
        == grpc.StatusCode.PERMISSION_DENIED
    )
    assert await _users_table(identity) == before


async def test_an_admin_manages_members_but_not_the_owner_role(identity: IdentityUnderTest) -> None:
    tenant = await _tenant(identity)
    promoted = await identity.stub.SetUserRole(
        identity_pb2.SetUserRoleRequest(user_id=tenant.member_id, role=access_pb2.ROLE_ADMIN),
        metadata=bearer(tenant.admin_token),
    )
    assert promoted.user.role == access_pb2.ROLE_ADMIN
    assert (
        await _code(
            identity.stub.SetUserRole(
                identity_pb2.SetUserRoleRequest(
                    user_id=tenant.member_id, role=access_pb2.ROLE_OWNER
                ),
                metadata=bearer(tenant.admin_token),
            )
        )
        == grpc.StatusCode.PERMISSION_DENIED
    )
    assert (
        await _code(
            identity.stub.DeactivateUser(
                identity_pb2.DeactivateUserRequest(user_id=tenant.owner.user.user_id),
                metadata=bearer(tenant.admin_token),
            )
        )
        == grpc.StatusCode.PERMISSION_DENIED
    )


async def test_the_last_owner_can_be_neither_demoted_nor_deactivated(
    identity: IdentityUnderTest,
) -> None:
    tenant = await _tenant(identity)
    owner_id = tenant.owner.user.user_id
    assert (
        await _code(
            identity.stub.SetUserRole(
                identity_pb2.SetUserRoleRequest(user_id=owner_id, role=access_pb2.ROLE_ADMIN),
                metadata=bearer(tenant.owner_token),
            )
        )
        == grpc.StatusCode.FAILED_PRECONDITION
    )
    assert (
        await _code(
            identity.stub.DeactivateUser(
                identity_pb2.DeactivateUserRequest(user_id=owner_id),
                metadata=bearer(tenant.owner_token),
            )
        )
        == grpc.StatusCode.FAILED_PRECONDITION
    )
    # With a second owner, the first may step down.
    await identity.stub.SetUserRole(
        identity_pb2.SetUserRoleRequest(user_id=tenant.admin_id, role=access_pb2.ROLE_OWNER),
        metadata=bearer(tenant.owner_token),
    )
    demoted = await identity.stub.SetUserRole(
        identity_pb2.SetUserRoleRequest(user_id=owner_id, role=access_pb2.ROLE_MEMBER),
        metadata=bearer(tenant.owner_token),
    )
    assert demoted.user.role == access_pb2.ROLE_MEMBER


async def test_two_owners_demoting_each_other_at_once_leave_one_owner(
    identity: IdentityUnderTest,
) -> None:
    tenant = await _tenant(identity)
    await identity.stub.SetUserRole(
        identity_pb2.SetUserRoleRequest(user_id=tenant.admin_id, role=access_pb2.ROLE_OWNER),
        metadata=bearer(tenant.owner_token),
    )
    # Sign in again: the role in a token is the one it was issued with.
    second_owner = await identity.stub.Login(
        identity_pb2.LoginRequest(
            tenant_slug=tenant.owner.tenant.slug,
            email="admin@acme.test",
            password="a decent password",
        )
    )
    results = await asyncio.gather(
        _code(
            identity.stub.SetUserRole(
                identity_pb2.SetUserRoleRequest(
                    user_id=tenant.admin_id, role=access_pb2.ROLE_MEMBER
                ),
                metadata=bearer(tenant.owner_token),
            )
        ),
        _code(
            identity.stub.SetUserRole(
                identity_pb2.SetUserRoleRequest(
                    user_id=tenant.owner.user.user_id, role=access_pb2.ROLE_MEMBER
                ),
                metadata=bearer(second_owner.tokens.access_token),
            )
        ),
    )
    assert sorted(code.name for code in results) == ["FAILED_PRECONDITION", "OK"]
    owners = [row for row in await _users_table(identity) if row[1] == 3 and row[2]]
    assert len(owners) == 1


async def test_no_call_reads_or_changes_another_tenants_users_or_keys(
    identity: IdentityUnderTest,
) -> None:
    victim = await _tenant(identity)
    key = await identity.stub.CreateApiKey(
        identity_pb2.CreateApiKeyRequest(name="victim", scopes=["users:read"]),
        metadata=bearer(victim.owner_token),
    )
    attacker = await identity.sign_up(email="boss@evil.test", tenant_name="Evil")
    token = attacker.tokens.access_token
    before = await _users_table(identity)
    target = victim.member_id
    calls = {
        "GetUser": identity.stub.GetUser(
            identity_pb2.GetUserRequest(user_id=target), metadata=bearer(token)
        ),
        "SetUserRole": identity.stub.SetUserRole(
            identity_pb2.SetUserRoleRequest(user_id=target, role=access_pb2.ROLE_ADMIN),
            metadata=bearer(token),
        ),
        "DeactivateUser": identity.stub.DeactivateUser(
            identity_pb2.DeactivateUserRequest(user_id=target), metadata=bearer(token)
        ),
        "RevokeApiKey": identity.stub.RevokeApiKey(
            identity_pb2.RevokeApiKeyRequest(api_key_id=key.api_key.api_key_id),
            metadata=bearer(token),
        ),
    }
    for name, call in calls.items():
        assert await _code(call) == grpc.StatusCode.NOT_FOUND, name
    listed = await identity.stub.ListUsers(identity_pb2.ListUsersRequest(), metadata=bearer(token))
    assert [user.email for user in listed.users] == ["boss@evil.test"]
    keys = await identity.stub.ListApiKeys(
        identity_pb2.ListApiKeysRequest(include_revoked=True), metadata=bearer(token)
    )
    assert list(keys.api_keys) == []
    assert await _users_table(identity) == before
    me = await identity.stub.GetMe(identity_pb2.GetMeRequest(), metadata=bearer(key.secret))
    assert me.tenant.tenant_id == victim.owner.tenant.tenant_id  # the key still works


async def test_users_are_listed_page_by_page(identity: IdentityUnderTest) -> None:
    tenant = await _tenant(identity)
    first = await identity.stub.ListUsers(
        identity_pb2.ListUsersRequest(page_size=2), metadata=bearer(tenant.owner_token)
    )
    second = await identity.stub.ListUsers(
        identity_pb2.ListUsersRequest(page_size=2, page_token=first.next_page_token),
        metadata=bearer(tenant.owner_token),
    )
    assert len(first.users) == 2 and first.next_page_token
    assert len(second.users) == 1 and not second.next_page_token
    emails = {user.email for user in [*first.users, *second.users]}
    assert emails == {"owner@acme.test", "admin@acme.test", "member@acme.test"}
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await identity.stub.ListUsers(
            identity_pb2.ListUsersRequest(page_token="garbage!"),
            metadata=bearer(tenant.owner_token),
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT

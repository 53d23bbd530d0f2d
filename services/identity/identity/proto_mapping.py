"""Conversions between the identity domain and its protobuf messages."""

from __future__ import annotations

from identity.domain import ApiKey, Tenant, TokenPair, User
from switchboard.access.v1 import access_pb2
from switchboard.identity.v1 import identity_pb2
from switchboard_runtime.principal import Principal, PrincipalKind, Role
from switchboard_runtime.proto_time import timestamp

_KINDS = {
    PrincipalKind.USER: identity_pb2.PRINCIPAL_KIND_USER,
    PrincipalKind.API_KEY: identity_pb2.PRINCIPAL_KIND_API_KEY,
    PrincipalKind.SERVICE: identity_pb2.PRINCIPAL_KIND_SERVICE,
}


def role_pb(role: Role | None) -> access_pb2.Role.ValueType:
    return access_pb2.Role.ValueType(0 if role is None else int(role))


def tenant_pb(tenant: Tenant) -> identity_pb2.Tenant:
    return identity_pb2.Tenant(
        tenant_id=tenant.tenant_id,
        name=tenant.name,
        slug=tenant.slug,
        create_time=timestamp(tenant.created_at),
    )


def user_pb(user: User) -> identity_pb2.User:
    return identity_pb2.User(
        user_id=user.user_id,
        tenant_id=user.tenant_id,
        email=user.email,
        display_name=user.display_name,
        role=role_pb(user.role),
        active=user.active,
        create_time=timestamp(user.created_at),
        update_time=timestamp(user.updated_at),
    )


def api_key_pb(key: ApiKey) -> identity_pb2.ApiKey:
    return identity_pb2.ApiKey(
        api_key_id=key.api_key_id,
        tenant_id=key.tenant_id,
        name=key.name,
        prefix=key.prefix,
        scopes=key.scopes,
        created_by_user_id=key.created_by_user_id,
        create_time=timestamp(key.created_at),
        expire_time=timestamp(key.expires_at),
        last_used_time=timestamp(key.last_used_at),
        revoke_time=timestamp(key.revoked_at),
    )


def token_pair_pb(tokens: TokenPair) -> identity_pb2.TokenPair:
    return identity_pb2.TokenPair(
        access_token=tokens.access_token,
        token_type="Bearer",
        access_token_expire_time=timestamp(tokens.access_token_expires_at),
        refresh_token=tokens.refresh_token,
        refresh_token_expire_time=timestamp(tokens.refresh_token_expires_at),
    )


def principal_pb(principal: Principal) -> identity_pb2.Principal:
    return identity_pb2.Principal(
        kind=_KINDS[principal.kind],
        tenant_id=principal.tenant_id,
        subject=principal.subject,
        role=role_pb(principal.role),
        scopes=sorted(principal.scopes),
    )

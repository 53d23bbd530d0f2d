"""IdentityService over gRPC: converts protos to use-case calls and errors to statuses."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import UTC
from typing import Any, TypeVar

import grpc

from identity.accounts import Accounts
from identity.api_keys import ApiKeys
from identity.authentication import LocalAuthenticator
from identity.errors import (
    AlreadyExistsError,
    ForbiddenError,
    IdentityError,
    InvalidCredentialsError,
    InvalidFieldError,
    LastOwnerError,
    LoginThrottledError,
    NotFoundError,
    ServiceAuthenticationError,
)
from identity.key_ring import KeyRing
from identity.proto_mapping import api_key_pb, principal_pb, tenant_pb, token_pair_pb, user_pb
from identity.service_tokens import ServiceTokens
from identity.sessions import Sessions
from switchboard.identity.v1 import identity_pb2, identity_pb2_grpc
from switchboard_runtime.auth_interceptor import InvalidCredentialError
from switchboard_runtime.grpc_errors import abort_resource_exhausted, abort_with_field_violations
from switchboard_runtime.pagination import InvalidPageTokenError
from switchboard_runtime.principal import Role, current_principal
from switchboard_runtime.proto_time import timestamp

Context = grpc.aio.ServicerContext[Any, Any]
Response = TypeVar("Response")

_STATUS_OF: dict[type[IdentityError], tuple[grpc.StatusCode, str | None]] = {
    InvalidCredentialsError: (grpc.StatusCode.UNAUTHENTICATED, "invalid credentials"),
    ServiceAuthenticationError: (grpc.StatusCode.UNAUTHENTICATED, "invalid client credentials"),
    NotFoundError: (grpc.StatusCode.NOT_FOUND, None),
    AlreadyExistsError: (grpc.StatusCode.ALREADY_EXISTS, None),
    ForbiddenError: (grpc.StatusCode.PERMISSION_DENIED, None),
    LastOwnerError: (grpc.StatusCode.FAILED_PRECONDITION, None),
}


def maps_errors(
    handler: Callable[[Any, Any, Context], Awaitable[Response]],
) -> Callable[[Any, Any, Context], Awaitable[Response]]:
    """Turn the use cases' expected errors into gRPC statuses, in one place."""

    @functools.wraps(handler)
    async def mapped(self: Any, request: Any, context: Context) -> Response:
        try:
            return await handler(self, request, context)
        except LoginThrottledError as error:
            await abort_resource_exhausted(
                context, error.retry_after_seconds, "too many failed sign-ins; retry later"
            )
        except InvalidFieldError as error:
            await abort_with_field_violations(context, [(error.field, error.description)])
        except InvalidPageTokenError as error:
            await abort_with_field_violations(context, [("page_token", str(error))])
        except IdentityError as error:
            code, fixed_message = _STATUS_OF[type(error)]
            await context.abort(code, fixed_message or str(error))
        raise AssertionError("unreachable: context.abort raises")

    return mapped


class IdentityServicer(identity_pb2_grpc.IdentityServiceServicer):
    def __init__(
        self,
        *,
        accounts: Accounts,
        sessions: Sessions,
        api_keys: ApiKeys,
        service_tokens: ServiceTokens,
        keys: KeyRing,
        authenticator: LocalAuthenticator,
        api_key_cache_ttl_seconds: int,
    ) -> None:
        self._accounts = accounts
        self._sessions = sessions
        self._api_keys = api_keys
        self._service_tokens = service_tokens
        self._keys = keys
        self._authenticator = authenticator
        self._api_key_cache_ttl = api_key_cache_ttl_seconds

    @maps_errors
    async def SignUp(
        self, request: identity_pb2.SignUpRequest, context: Context
    ) -> identity_pb2.SignUpResponse:
        tenant, user, tokens = await self._accounts.sign_up(
            tenant_name=request.tenant_name,
            tenant_slug=request.tenant_slug,
            email=request.email,
            password=request.password,
            display_name=request.display_name,
        )
        return identity_pb2.SignUpResponse(
            tenant=tenant_pb(tenant), user=user_pb(user), tokens=token_pair_pb(tokens)
        )

    @maps_errors
    async def Login(
        self, request: identity_pb2.LoginRequest, context: Context
    ) -> identity_pb2.LoginResponse:
        user, tokens = await self._sessions.login(
            request.tenant_slug, request.email, request.password
        )
        return identity_pb2.LoginResponse(user=user_pb(user), tokens=token_pair_pb(tokens))

    @maps_errors
    async def RefreshToken(
        self, request: identity_pb2.RefreshTokenRequest, context: Context
    ) -> identity_pb2.RefreshTokenResponse:
        tokens = await self._sessions.refresh(request.refresh_token)
        return identity_pb2.RefreshTokenResponse(tokens=token_pair_pb(tokens))

    @maps_errors
    async def Logout(
        self, request: identity_pb2.LogoutRequest, context: Context
    ) -> identity_pb2.LogoutResponse:
        await self._sessions.logout(current_principal(), request.refresh_token)
        return identity_pb2.LogoutResponse()

    @maps_errors
    async def GetMe(
        self, request: identity_pb2.GetMeRequest, context: Context
    ) -> identity_pb2.GetMeResponse:
        principal = current_principal()
        response = identity_pb2.GetMeResponse(
            principal=principal_pb(principal),
            tenant=tenant_pb(await self._accounts.tenant(principal)),
        )
        if principal.role is not None:
            response.user.CopyFrom(
                user_pb(await self._accounts.get_user(principal, principal.subject))
            )
        return response

    @maps_errors
    async def CreateUser(
        self, request: identity_pb2.CreateUserRequest, context: Context
    ) -> identity_pb2.CreateUserResponse:
        user = await self._accounts.create_user(
            current_principal(),
            email=request.email,
            password=request.password,
            display_name=request.display_name,
            role=Role(request.role),
        )
        return identity_pb2.CreateUserResponse(user=user_pb(user))

    @maps_errors
    async def GetUser(
        self, request: identity_pb2.GetUserRequest, context: Context
    ) -> identity_pb2.GetUserResponse:
        user = await self._accounts.get_user(current_principal(), request.user_id)
        return identity_pb2.GetUserResponse(user=user_pb(user))

    @maps_errors
    async def ListUsers(
        self, request: identity_pb2.ListUsersRequest, context: Context
    ) -> identity_pb2.ListUsersResponse:
        users, next_token = await self._accounts.list_users(
            current_principal(),
            size=request.page_size,
            token=request.page_token,
            include_inactive=request.include_inactive,
        )
        return identity_pb2.ListUsersResponse(
            users=[user_pb(user) for user in users], next_page_token=next_token
        )

    @maps_errors
    async def SetUserRole(
        self, request: identity_pb2.SetUserRoleRequest, context: Context
    ) -> identity_pb2.SetUserRoleResponse:
        user = await self._accounts.set_user_role(
            current_principal(), request.user_id, Role(request.role)
        )
        return identity_pb2.SetUserRoleResponse(user=user_pb(user))

    @maps_errors
    async def DeactivateUser(
        self, request: identity_pb2.DeactivateUserRequest, context: Context
    ) -> identity_pb2.DeactivateUserResponse:
        user = await self._accounts.deactivate_user(current_principal(), request.user_id)
        return identity_pb2.DeactivateUserResponse(user=user_pb(user))

    @maps_errors
    async def CreateApiKey(
        self, request: identity_pb2.CreateApiKeyRequest, context: Context
    ) -> identity_pb2.CreateApiKeyResponse:
        expires_at = (
            request.expire_time.ToDatetime(tzinfo=UTC) if request.HasField("expire_time") else None
        )
        key, secret = await self._api_keys.create(
            current_principal(),
            name=request.name,
            scopes=list(request.scopes),
            expires_at=expires_at,
        )
        return identity_pb2.CreateApiKeyResponse(api_key=api_key_pb(key), secret=secret)

    @maps_errors
    async def ListApiKeys(
        self, request: identity_pb2.ListApiKeysRequest, context: Context
    ) -> identity_pb2.ListApiKeysResponse:
        keys, next_token = await self._api_keys.list(
            current_principal(),
            size=request.page_size,
            token=request.page_token,
            include_revoked=request.include_revoked,
        )
        return identity_pb2.ListApiKeysResponse(
            api_keys=[api_key_pb(key) for key in keys], next_page_token=next_token
        )

    @maps_errors
    async def RevokeApiKey(
        self, request: identity_pb2.RevokeApiKeyRequest, context: Context
    ) -> identity_pb2.RevokeApiKeyResponse:
        key = await self._api_keys.revoke(current_principal(), request.api_key_id)
        return identity_pb2.RevokeApiKeyResponse(api_key=api_key_pb(key))

    @maps_errors
    async def Authenticate(
        self, request: identity_pb2.AuthenticateRequest, context: Context
    ) -> identity_pb2.AuthenticateResponse:
        credential = request.access_token or request.api_key
        try:
            principal = await self._authenticator.authenticate(credential)
        except InvalidCredentialError as error:
            raise InvalidCredentialsError(error.reason) from error
        return identity_pb2.AuthenticateResponse(
            principal=principal_pb(principal), cache_ttl_seconds=self._api_key_cache_ttl
        )

    @maps_errors
    async def IssueServiceToken(
        self, request: identity_pb2.IssueServiceTokenRequest, context: Context
    ) -> identity_pb2.IssueServiceTokenResponse:
        token, expires_at = await self._service_tokens.issue(
            service_name=request.service_name,
            client_secret=request.client_secret,
            tenant_id=request.tenant_id,
            scopes=list(request.scopes),
        )
        return identity_pb2.IssueServiceTokenResponse(
            access_token=token, expire_time=timestamp(expires_at)
        )

    @maps_errors
    async def RotateSigningKey(
        self, request: identity_pb2.RotateSigningKeyRequest, context: Context
    ) -> identity_pb2.RotateSigningKeyResponse:
        return identity_pb2.RotateSigningKeyResponse(kid=await self._keys.rotate())

    @maps_errors
    async def GetJwks(
        self, request: identity_pb2.GetJwksRequest, context: Context
    ) -> identity_pb2.GetJwksResponse:
        return identity_pb2.GetJwksResponse(
            keys=[identity_pb2.JsonWebKey(**jwk) for jwk in await self._keys.jwks()]
        )

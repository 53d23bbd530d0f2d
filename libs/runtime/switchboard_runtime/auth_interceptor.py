"""Authentication and authorization of every call, by the access policy in the contract.

Each Switchboard method carries `(switchboard.access.v1.policy)`. This interceptor reads it
for the method being called, verifies the caller's `authorization: Bearer <credential>`
(an access token or an API key, through the service's `Authenticator`), checks audience,
roles and scopes, and puts the principal in `principal_var` for the handler. A Switchboard
method without a policy is refused: exposure without a policy is a bug, never a default.
Methods of other packages (health, reflection) need no credentials.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final, Protocol

import grpc

from switchboard.access.v1 import access_pb2
from switchboard_runtime.contract import policy_at
from switchboard_runtime.interceptors import CallInfo, Context, WrappingInterceptor
from switchboard_runtime.principal import Principal, PrincipalKind, Role, principal_var

logger = logging.getLogger("switchboard.auth")

_OUR_PACKAGES: Final = "switchboard."
_BEARER: Final = "bearer "


class InvalidCredentialError(Exception):
    """The credential is not valid; `reason` is for logs only, never sent to the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AuthenticationUnavailableError(Exception):
    """The credential cannot be checked right now (identity or its keys unreachable)."""


class Authenticator(Protocol):
    """Turns a bearer credential (access token or API key) into a principal."""

    async def authenticate(self, credential: str) -> Principal:
        """The principal; InvalidCredentialError if the credential is not valid, and
        AuthenticationUnavailableError if that cannot be told right now."""
        ...


class Denied(Exception):
    """The caller may not call this method."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def authorize(policy: access_pb2.AccessPolicy, principal: Principal) -> None:
    """Raise Denied unless `principal` satisfies `policy` (audience, roles, scopes)."""
    if policy.audience == access_pb2.AUDIENCE_INTERNAL and principal.kind is not (
        PrincipalKind.SERVICE
    ):
        raise Denied(grpc.StatusCode.PERMISSION_DENIED, "this method is for services only")
    if policy.roles and principal.kind is PrincipalKind.USER:
        lowest = min(Role(role) for role in policy.roles)
        if principal.role is None or principal.role < lowest:
            raise Denied(
                grpc.StatusCode.PERMISSION_DENIED, f"requires the {lowest.label} role or higher"
            )
    missing = sorted(set(policy.scopes) - principal.scopes)
    if missing:
        raise Denied(grpc.StatusCode.PERMISSION_DENIED, f"requires scope {' '.join(missing)}")


def bearer_credential(context: Context) -> str | None:
    """The credential of an `authorization: Bearer ...` header, if the call has one."""
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str):
            if value[: len(_BEARER)].lower() == _BEARER:
                return value[len(_BEARER) :].strip() or None
            return None
    return None


class AuthInterceptor(WrappingInterceptor):
    """Enforces each method's access policy and sets `principal_var`."""

    def __init__(self, authenticator: Authenticator) -> None:
        self._authenticator = authenticator
        self.around = self._authenticated

    @asynccontextmanager
    async def _authenticated(self, call: CallInfo, context: Context) -> AsyncIterator[None]:
        principal_var.set(None)
        if call.service.startswith(_OUR_PACKAGES):
            await self._check(call, context)
        yield

    async def _check(self, call: CallInfo, context: Context) -> None:
        policy = policy_at(call.method)
        if policy is None or policy.audience == access_pb2.AUDIENCE_UNSPECIFIED:
            logger.error("method without an access policy refused", extra={"method": call.method})
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "method has no access policy")
            return
        if policy.audience == access_pb2.AUDIENCE_PUBLIC or policy.self_authenticating:
            return
        credential = bearer_credential(context)
        if credential is None:
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED, "missing credentials: send a Bearer token"
            )
            return
        try:
            principal = await self._authenticator.authenticate(credential)
        except InvalidCredentialError as error:
            logger.info("credential rejected", extra={"reason": error.reason})
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid or expired credentials")
            return
        except AuthenticationUnavailableError:
            await context.abort(
                grpc.StatusCode.UNAVAILABLE, "credentials cannot be verified right now; retry"
            )
            return
        try:
            authorize(policy, principal)
        except Denied as denial:
            await context.abort(denial.code, denial.message)
            return
        principal_var.set(principal)

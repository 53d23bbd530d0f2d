"""The identity domain: tenants, users, API keys and sessions, and the rules that bind them.

Plain dataclasses and functions; no gRPC, no SQL.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from identity.errors import ForbiddenError, InvalidFieldError
from switchboard_runtime.principal import (
    ADMIN_SCOPES,
    MEMBER_SCOPES,
    SERVICE_ONLY_SCOPES,
    Role,
    scopes_of_role,
)

API_KEY_PREFIX: Final = "sbk_"
REFRESH_TOKEN_PREFIX: Final = "sbr_"
#: Scopes a user-created API key may carry (never the service-only ones).
API_KEY_SCOPES: Final = ADMIN_SCOPES
#: Scopes a service may ask for in a service token.
SERVICE_SCOPES: Final = ADMIN_SCOPES | SERVICE_ONLY_SCOPES
KNOWN_SCOPES: Final = MEMBER_SCOPES | ADMIN_SCOPES | SERVICE_ONLY_SCOPES


@dataclass(frozen=True, slots=True)
class Tenant:
    tenant_id: str
    name: str
    slug: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class User:
    user_id: str
    tenant_id: str
    email: str
    display_name: str
    role: Role
    active: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKey:
    api_key_id: str
    tenant_id: str
    name: str
    lookup_id: str
    scopes: tuple[str, ...]
    created_by_user_id: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def prefix(self) -> str:
        """The public start of the key, for telling keys apart."""
        return f"{API_KEY_PREFIX}{self.lookup_id}"

    def usable_at(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    access_token_expires_at: datetime
    refresh_token: str
    refresh_token_expires_at: datetime


def check_role_change(*, actor: Role, current: Role, new: Role) -> None:
    """Only owners grant or take away the owner role (the last-owner rule is checked apart)."""
    if Role.OWNER in (current, new) and actor is not Role.OWNER:
        raise ForbiddenError("only an owner can grant or remove the owner role")


def check_grantable_scopes(requested: list[str], *, holder_scopes: frozenset[str]) -> None:
    """An API key carries known, user-grantable scopes its creator holds themselves."""
    for index, scope in enumerate(requested):
        if scope not in API_KEY_SCOPES:
            raise InvalidFieldError(f"scopes[{index}]", f"unknown scope {scope!r}")
        if scope not in holder_scopes:
            raise ForbiddenError(f"you cannot grant scope {scope!r}: you do not hold it")


def user_scopes(role: Role) -> frozenset[str]:
    return scopes_of_role(role)


def _token(nbytes: int) -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(nbytes)).rstrip(b"=").decode("ascii")


def secret_hash(secret: str) -> bytes:
    """Hash of a high-entropy secret (refresh token, API key secret).

    A fast hash is enough: the secrets are 256-bit random, so there is nothing to brute-force;
    argon2 is for passwords people choose.
    """
    return hashlib.sha256(secret.encode("utf-8")).digest()


def new_refresh_token() -> str:
    return REFRESH_TOKEN_PREFIX + _token(32)


def new_api_key() -> tuple[str, str, str]:
    """(lookup id, secret, the full key as handed to its creator)."""
    lookup_id = secrets.token_hex(6)
    secret = _token(32)
    return lookup_id, secret, f"{API_KEY_PREFIX}{lookup_id}_{secret}"


def parse_api_key(key: str) -> tuple[str, str] | None:
    """(lookup id, secret) of a well-formed API key, else None."""
    if not key.startswith(API_KEY_PREFIX):
        return None
    lookup_id, sep, secret = key[len(API_KEY_PREFIX) :].partition("_")
    if not sep or len(lookup_id) != 12 or len(secret) < 32:
        return None
    return lookup_id, secret


def looks_like_api_key(credential: str) -> bool:
    return credential.startswith(API_KEY_PREFIX)


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """How failed sign-ins for one (tenant, email) slow down and then lock further tries."""

    slow_after: int
    lock_after: int
    lock: timedelta


@dataclass(frozen=True, slots=True)
class ThrottleState:
    failures: int
    last_failure_at: datetime
    blocked_until: datetime


def wait_before_attempt(state: ThrottleState | None, now: datetime) -> float:
    """Seconds until another sign-in attempt is allowed (0: now)."""
    if state is None or state.blocked_until <= now:
        return 0.0
    return (state.blocked_until - now).total_seconds()


def after_failure(
    state: ThrottleState | None, now: datetime, policy: ThrottlePolicy
) -> ThrottleState:
    """The throttle after one more failed (or refused) attempt.

    Failures older than the lock period are forgotten. From `slow_after` failures on, each
    attempt must wait twice as long as the one before (1 s, 2 s, 4 s, ...); from `lock_after`
    on, the account is locked for the lock period.
    """
    failures = 1
    if state is not None and now - state.last_failure_at < policy.lock:
        failures = state.failures + 1
    if failures >= policy.lock_after:
        blocked_until = now + policy.lock
    elif failures >= policy.slow_after:
        blocked_until = now + timedelta(seconds=2 ** (failures - policy.slow_after))
    else:
        blocked_until = now
    return ThrottleState(failures=failures, last_failure_at=now, blocked_until=blocked_until)

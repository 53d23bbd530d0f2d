"""Errors of the identity service's use cases.

    IdentityError
    ├── InvalidCredentialsError     wrong email/password, or an unusable refresh token
    ├── LoginThrottledError         too many failed sign-ins; retry_after_seconds
    ├── ServiceAuthenticationError  unknown service or wrong client secret
    ├── NotFoundError               no such user / API key / tenant in the caller's tenant
    ├── AlreadyExistsError          tenant slug or email taken
    ├── ForbiddenError              the caller's role may not do this
    ├── LastOwnerError              the change would leave the tenant without an active owner
    └── InvalidFieldError           a field is well-formed but not acceptable (unknown scope)

The servicer maps each to one gRPC status in one place.
"""

from __future__ import annotations


class IdentityError(Exception):
    """Base of the identity service's expected failures."""


class InvalidCredentialsError(IdentityError):
    """The credentials do not identify an active user; callers learn nothing more."""


class LoginThrottledError(IdentityError):
    def __init__(self, retry_after_seconds: float) -> None:
        super().__init__("too many failed sign-ins")
        self.retry_after_seconds = retry_after_seconds


class ServiceAuthenticationError(IdentityError):
    """A service failed to prove itself with its client secret."""


class NotFoundError(IdentityError):
    pass


class AlreadyExistsError(IdentityError):
    pass


class ForbiddenError(IdentityError):
    pass


class LastOwnerError(IdentityError):
    def __init__(self) -> None:
        super().__init__("a tenant must keep at least one active owner")


class InvalidFieldError(IdentityError):
    def __init__(self, field: str, description: str) -> None:
        super().__init__(f"{field}: {description}")
        self.field = field
        self.description = description

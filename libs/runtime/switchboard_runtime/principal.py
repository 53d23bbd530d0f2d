"""Who is calling: the verified principal of a request, roles and the scopes each role grants.

The auth interceptor puts the principal of the current call in `principal_var`; handlers take
the tenant from it and never from a request body.
"""

from __future__ import annotations

import contextvars
import enum
from dataclasses import dataclass, field

from switchboard.access.v1 import access_pb2


class Role(enum.IntEnum):
    """A user's role in their tenant; a higher role includes what the lower ones may do.

    The numbers are those of `switchboard.access.v1.Role`.
    """

    MEMBER = access_pb2.ROLE_MEMBER
    ADMIN = access_pb2.ROLE_ADMIN
    OWNER = access_pb2.ROLE_OWNER

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def from_label(cls, label: str) -> Role:
        return cls[label.upper()]


class PrincipalKind(enum.StrEnum):
    """What kind of credential a principal was verified from."""

    USER = "user"
    API_KEY = "api_key"
    SERVICE = "service"


#: What every member of a tenant may do.
MEMBER_SCOPES = frozenset(
    {
        "users:read",
        "bots:read",
        "conversations:read",
        "conversations:write",
        "messages:read",
        "messages:write",
        "channels:read",
        "llm:read",
        "llm:complete",
    }
)
#: Admins (and owners) also manage users, API keys, bots and channels.
ADMIN_SCOPES = MEMBER_SCOPES | {
    "users:write",
    "keys:read",
    "keys:write",
    "bots:write",
    "channels:write",
}
#: Platform operations, granted only to service principals (operators' tools included).
SERVICE_ONLY_SCOPES = frozenset({"identity:authenticate", "identity:operate", "llm:operate"})

_ROLE_SCOPES = {Role.MEMBER: MEMBER_SCOPES, Role.ADMIN: ADMIN_SCOPES, Role.OWNER: ADMIN_SCOPES}


def scopes_of_role(role: Role) -> frozenset[str]:
    """The scopes a user token of this role carries."""
    return _ROLE_SCOPES[role]


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified caller of a request."""

    kind: PrincipalKind
    #: Empty only for platform service principals, which reach no tenant's data.
    tenant_id: str
    #: The user id, API key id or service name.
    subject: str
    #: Users only.
    role: Role | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)

    def has_scopes(self, required: frozenset[str] | set[str] | list[str]) -> bool:
        return self.scopes.issuperset(required)


principal_var: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "principal", default=None
)


class NoPrincipalError(RuntimeError):
    """A handler asked for the caller of a method whose policy lets anyone in (a wiring bug)."""


def current_principal() -> Principal:
    """The verified caller of the current call."""
    principal = principal_var.get()
    if principal is None:
        raise NoPrincipalError("no authenticated principal for this call")
    return principal

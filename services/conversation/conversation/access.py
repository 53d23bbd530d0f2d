"""Who is acting: the verified principal of a call, or this service acting on an event."""

from __future__ import annotations

from conversation.domain import Actor, ActorKind
from conversation.errors import ForbiddenError
from switchboard_runtime.principal import Principal, PrincipalKind, Role

_KINDS = {
    PrincipalKind.USER: ActorKind.USER,
    PrincipalKind.API_KEY: ActorKind.API_KEY,
    PrincipalKind.SERVICE: ActorKind.SERVICE,
}


def actor_of(principal: Principal) -> Actor:
    """The actor of a call; the tenant comes from the verified credential only.

    Admins and owners reach every conversation of their tenant; so do services, which act
    for the tenant their token names. API keys reach the conversations they created.
    """
    if not principal.tenant_id:
        raise ForbiddenError("this credential acts for no tenant")
    kind = _KINDS[principal.kind]
    tenant_wide = kind is ActorKind.SERVICE or (
        principal.role is not None and principal.role >= Role.ADMIN
    )
    return Actor(
        tenant_id=principal.tenant_id,
        kind=kind,
        subject=principal.subject,
        tenant_wide=tenant_wide,
    )


def system_actor(tenant_id: str) -> Actor:
    """This service acting on an event for `tenant_id` (the event's tenant)."""
    return Actor(
        tenant_id=tenant_id, kind=ActorKind.SYSTEM, subject="conversation", tenant_wide=True
    )

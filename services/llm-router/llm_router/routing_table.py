"""The routing table: one configuration with its provider clients, swapped whole on SIGHUP.

A call takes the table current when it starts and keeps it to the end, so a reload never
changes the deployments, timeouts or policies under a call in flight. Provider clients are
reused across reloads when nothing they depend on changed; the others are closed once every
call that could use them has finished.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from llm_router.config import DeploymentConfig, RouterConfig
from llm_router.errors import UnknownModelError
from llm_router.providers.base import Provider
from llm_router.selection import SmoothWeightedRoundRobin

ProviderFactory = Callable[[DeploymentConfig], Provider]


@dataclass(eq=False, slots=True)
class Deployment:
    config: DeploymentConfig
    provider: Provider

    @property
    def id(self) -> str:
        return self.config.id


@dataclass(eq=False, slots=True)
class AliasRoute:
    alias: str
    deployments: tuple[Deployment, ...]
    selector: SmoothWeightedRoundRobin = field(default_factory=SmoothWeightedRoundRobin)


class RoutingTable:
    def __init__(self, config: RouterConfig, providers: dict[str, Provider]) -> None:
        self.config = config
        self.deployments: dict[str, Deployment] = {}
        self.routes: dict[str, AliasRoute] = {}
        for model in config.models:
            deployments = tuple(Deployment(d, providers[d.id]) for d in model.deployments)
            self.routes[model.alias] = AliasRoute(model.alias, deployments)
            self.deployments.update((d.id, d) for d in deployments)
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def route(self, alias: str) -> AliasRoute:
        try:
            return self.routes[alias]
        except KeyError:
            raise UnknownModelError(alias) from None

    def enter(self) -> None:
        """A call started on this table."""
        self._active += 1
        self._idle.clear()

    def leave(self) -> None:
        """A call that started on this table has finished."""
        self._active -= 1
        if self._active == 0:
            self._idle.set()

    async def wait_idle(self) -> None:
        await self._idle.wait()


def build_table(
    config: RouterConfig, factory: ProviderFactory, *, previous: RoutingTable | None = None
) -> tuple[RoutingTable, list[Provider]]:
    """The table for `config`, reusing `previous`'s clients where possible; also returns the
    clients of `previous` that the new table no longer uses."""
    reusable: dict[tuple[str, tuple[object, ...]], Provider] = {}
    if previous is not None:
        reusable = {(d.id, d.config.client_key): d.provider for d in previous.deployments.values()}
    providers: dict[str, Provider] = {}
    kept: set[int] = set()
    for deployment in config.deployments():
        existing = reusable.get((deployment.id, deployment.client_key))
        if existing is not None:
            kept.add(id(existing))
            providers[deployment.id] = existing
        else:
            providers[deployment.id] = factory(deployment)
    retired = [p for p in reusable.values() if id(p) not in kept]
    return RoutingTable(config, providers), retired

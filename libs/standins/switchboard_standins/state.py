"""The live state of one stand-in, shared by its provider handlers and its admin API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from aiohttp import web

from switchboard_standins.faults import FaultInjector
from switchboard_standins.replies import ReplyPolicy
from switchboard_standins.request_ledger import Outcome, RequestLedger

__all__ = ["STATE", "StandinState"]


@dataclass(slots=True, kw_only=True)
class StandinState:
    """Everything a running stand-in knows; handlers read it on every request.

    models      the models it serves; None accepts any model name
    disruption  set while the server itself tears connections down (going down, shutting
                down), so requests cut by that are not mistaken for clients leaving
    """

    api_key: str
    models: tuple[str, ...] | None
    injector: FaultInjector
    reply: ReplyPolicy
    ledger: RequestLedger
    disruption: Outcome | None = None


STATE: Final = web.AppKey("state", StandinState)

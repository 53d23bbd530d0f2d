"""The stand-ins' admin API: observe requests and change faults at runtime, over JSON.

Served under ``/_standin`` next to the provider paths, and on the optional admin listener, which
stays up while the provider port is down (only there can ``down``/``up`` be called: on the
provider port, going down would cut the very connection that asked).

    GET  /_standin/stats?recent=N    counters and the N most recent records (default 100)
    POST /_standin/stats/reset       forget counters and finished records
    GET  /_standin/requests/{id}     one record (404 once it has left the recent list)
    GET  /_standin/profile           {"profile": {...}, "pending_script": n}
    PUT  /_standin/profile           replace the profile (a FaultProfile JSON object); draws
                                     restart from its seed, its script replaces any pending one
    POST /_standin/script            {"faults": [{...}, ...]}: append to the pending script
    GET  /_standin/reply             {"canned": ..., "filler_tokens": n}
    PUT  /_standin/reply             replace the reply policy (same fields)
    POST /_standin/down              admin listener only: refuse connections on the provider port
    POST /_standin/up                admin listener only: listen again on the same port

Bad input gets 400 ``{"error": "..."}``.
"""

from __future__ import annotations

import json
from typing import Any, Final, Protocol

from aiohttp import web

from switchboard_standins.faults import Fault, FaultInjector, FaultProfile
from switchboard_standins.replies import ReplyPolicy
from switchboard_standins.state import STATE

__all__ = ["POWER", "PowerSwitch", "add_admin_routes"]

PREFIX: Final = "/_standin"
_DEFAULT_RECENT: Final = 100


class PowerSwitch(Protocol):
    """Takes the provider port down and brings it back (implemented by `StandinServer`)."""

    @property
    def is_up(self) -> bool: ...

    async def go_down(self) -> None: ...

    async def come_up(self) -> None: ...


POWER: Final = web.AppKey[PowerSwitch]("power")


def add_admin_routes(app: web.Application, *, power: PowerSwitch | None = None) -> None:
    """Serve the admin API from `app`; with `power`, include ``down`` and ``up``."""
    router = app.router
    router.add_get(f"{PREFIX}/stats", _stats)
    router.add_post(f"{PREFIX}/stats/reset", _reset_stats)
    router.add_get(f"{PREFIX}/requests/{{request_id}}", _request)
    router.add_get(f"{PREFIX}/profile", _get_profile)
    router.add_put(f"{PREFIX}/profile", _put_profile)
    router.add_post(f"{PREFIX}/script", _script)
    router.add_get(f"{PREFIX}/reply", _get_reply)
    router.add_put(f"{PREFIX}/reply", _put_reply)
    if power is not None:
        app[POWER] = power
        router.add_post(f"{PREFIX}/down", _down)
        router.add_post(f"{PREFIX}/up", _up)


async def _stats(request: web.Request) -> web.Response:
    try:
        recent = int(request.query.get("recent", _DEFAULT_RECENT))
    except ValueError:
        return _bad_request("recent must be an integer")
    return web.json_response(request.app[STATE].ledger.snapshot(recent=recent).to_json())


async def _reset_stats(request: web.Request) -> web.Response:
    request.app[STATE].ledger.reset()
    return web.json_response({"reset": True})


async def _request(request: web.Request) -> web.Response:
    record = request.app[STATE].ledger.get(request.match_info["request_id"])
    if record is None:
        return web.json_response({"error": "no such recent request"}, status=404)
    return web.json_response(record.to_json())


async def _get_profile(request: web.Request) -> web.Response:
    return _profile_response(request)


async def _put_profile(request: web.Request) -> web.Response:
    try:
        profile = FaultProfile.from_json(await _json_body(request))
    except ValueError as exc:
        return _bad_request(str(exc))
    request.app[STATE].injector = FaultInjector(profile)
    return _profile_response(request)


async def _script(request: web.Request) -> web.Response:
    try:
        body = await _json_body(request)
        items = body.get("faults") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise ValueError('expected {"faults": [...]}')
        faults = [Fault.from_json(item) for item in items]
    except ValueError as exc:
        return _bad_request(str(exc))
    injector = request.app[STATE].injector
    injector.push(*faults)
    return web.json_response({"pending_script": injector.pending})


async def _get_reply(request: web.Request) -> web.Response:
    return _reply_response(request.app[STATE].reply)


async def _put_reply(request: web.Request) -> web.Response:
    try:
        body = await _json_body(request)
        if not isinstance(body, dict) or set(body) - {"canned", "filler_tokens"}:
            raise ValueError("expected an object with canned and/or filler_tokens")
        canned, filler = body.get("canned"), body.get("filler_tokens", 0)
        if canned is not None and not isinstance(canned, str):
            raise ValueError("canned must be a string or null")
        if isinstance(filler, bool) or not isinstance(filler, int):
            raise ValueError("filler_tokens must be an integer")
        reply = ReplyPolicy(canned=canned, filler_tokens=filler)
    except ValueError as exc:
        return _bad_request(str(exc))
    request.app[STATE].reply = reply
    return _reply_response(reply)


async def _down(request: web.Request) -> web.Response:
    power = request.app[POWER]
    await power.go_down()
    return web.json_response({"up": power.is_up})


async def _up(request: web.Request) -> web.Response:
    power = request.app[POWER]
    await power.come_up()
    return web.json_response({"up": power.is_up})


def _profile_response(request: web.Request) -> web.Response:
    injector = request.app[STATE].injector
    return web.json_response(
        {"profile": injector.profile.to_json(), "pending_script": injector.pending}
    )


def _reply_response(reply: ReplyPolicy) -> web.Response:
    return web.json_response({"canned": reply.canned, "filler_tokens": reply.filler_tokens})


async def _json_body(request: web.Request) -> Any:
    try:
        return json.loads(await request.read())
    except ValueError:
        raise ValueError("the body is not valid JSON") from None


def _bad_request(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)

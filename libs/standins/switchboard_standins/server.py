"""`StandinServer`: one stand-in provider API on a real local port, for tests and benchmarks.

    async with StandinServer("openai", api_key="sk-test") as server:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test")
        server.script(Fault.error(503))          # the next request gets a 503
        ...
        record = await server.wait_finished(request_id)
        assert record.outcome == "client_closed"

One server speaks one provider's API ("openai" or "anthropic"): a deployment, with its own
faults, counters and port, which is what routing tests need (two deployments, one slow). The
admin API (`admin_api`) is served under ``/_standin`` on the same port and, when `admin_port` is
given, on a second listener that stays up while the provider port is down.

`go_down` closes the listening socket (new connections are refused) and drops every open
connection, as a crashed process would; `come_up` listens again on the same port.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from types import TracebackType
from typing import Final, Literal, Self

from aiohttp import web
from yarl import URL

from switchboard_standins.admin_api import PREFIX as ADMIN_PREFIX
from switchboard_standins.admin_api import add_admin_routes
from switchboard_standins.anthropic_api import add_anthropic_routes
from switchboard_standins.faults import Fault, FaultInjector, FaultProfile
from switchboard_standins.openai_api import add_openai_routes
from switchboard_standins.replies import ReplyPolicy
from switchboard_standins.request_ledger import LedgerSnapshot, RequestLedger, RequestRecord
from switchboard_standins.state import STATE, StandinState

__all__ = ["ProviderKind", "StandinServer"]

ProviderKind = Literal["openai", "anthropic"]

_log = logging.getLogger(__name__)
# Requests are cancelled, not drained, when the server goes down, so they end within a loop
# iteration or two; this bound only guards against a handler stuck in a bug.
_SETTLE_TIMEOUT_S: Final = 5.0
_SHUTDOWN_TIMEOUT_S: Final = 2.0


class StandinServer:
    """A local HTTP server speaking `kind`'s API, with fault injection and request records.

    api_key       the only key accepted (Bearer for OpenAI, x-api-key for Anthropic)
    host, port    where to listen; port 0 picks a free port (see `port` once started)
    admin_port    also serve the admin API on this port (0: a free one), which stays up
                  while the provider port is down; None: no separate admin listener
    profile       the fault profile (default: no faults, no delays)
    reply         how replies are built (default: "Echo: <last user message>")
    models        the models served; None accepts any model name
    keep_records  how many recent request records to keep (counters are unbounded)
    """

    def __init__(
        self,
        kind: ProviderKind,
        *,
        api_key: str = "sk-standin",
        host: str = "127.0.0.1",
        port: int = 0,
        admin_port: int | None = None,
        profile: FaultProfile | None = None,
        reply: ReplyPolicy | None = None,
        models: Sequence[str] | None = None,
        keep_records: int = 1000,
    ) -> None:
        if kind not in ("openai", "anthropic"):
            raise ValueError(f"kind must be 'openai' or 'anthropic', got {kind!r}")
        if isinstance(models, str):
            raise TypeError("models must be a sequence of model names, not one string")
        self._kind: ProviderKind = kind
        self._host = host
        self._port = port
        self._admin_port = admin_port
        self._state = StandinState(
            api_key=api_key,
            models=None if models is None else tuple(models),
            injector=FaultInjector(profile or FaultProfile()),
            reply=reply or ReplyPolicy(),
            ledger=RequestLedger(keep=keep_records),
        )
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._admin_runner: web.AppRunner | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start listening (and the admin listener, if asked for)."""
        if self._runner is not None:
            raise RuntimeError("the stand-in is already started")
        app = self._make_app()
        if self._kind == "openai":
            add_openai_routes(app)
        else:
            add_anthropic_routes(app)
        add_admin_routes(app)
        self._runner = await _start_runner(app)
        try:
            await self._listen()
            if self._admin_port is not None:
                admin_app = self._make_app()
                add_admin_routes(admin_app, power=self)
                self._admin_runner = await _start_runner(admin_app)
                site = web.TCPSite(self._admin_runner, self._host, self._admin_port)
                await site.start()
                self._admin_port = site.port
        except BaseException:
            # A port already taken, typically: leave nothing half-started behind.
            await self.close()
            raise

    async def close(self) -> None:
        """Stop listening and drop every connection; requests in flight end as server_down."""
        if self._runner is None:
            return
        await self.go_down()
        await self._runner.cleanup()
        self._runner = None
        if self._admin_runner is not None:
            await self._admin_runner.cleanup()
            self._admin_runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def go_down(self) -> None:
        """Refuse connections: close the listening socket and drop open connections."""
        if self._site is None:
            return
        site, self._site = self._site, None
        # Before anything is cancelled: the handlers read it to record why they ended.
        self._state.disruption = "server_down"
        await site.stop()
        runner = self._runner
        if runner is not None and runner.server is not None:
            for connection in runner.server.connections:
                if connection.transport is not None:
                    connection.transport.abort()
        try:
            async with asyncio.timeout(_SETTLE_TIMEOUT_S):
                await self._state.ledger.wait_idle()
        except TimeoutError:
            _log.warning(
                "stand-in requests still in flight %.0f s after going down", _SETTLE_TIMEOUT_S
            )

    async def come_up(self) -> None:
        """Listen again, on the same port."""
        if self._site is not None:
            return
        if self._runner is None:
            raise RuntimeError("the stand-in is not started")
        await self._listen()

    async def _listen(self) -> None:
        assert self._runner is not None
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        # Port 0 becomes a real port once; coming back up reuses it.
        self._port = site.port
        self._site = site
        self._state.disruption = None

    def _make_app(self) -> web.Application:
        app = web.Application()
        app[STATE] = self._state
        return app

    # -- where it listens --------------------------------------------------------------------

    @property
    def kind(self) -> ProviderKind:
        return self._kind

    @property
    def port(self) -> int:
        return self._port

    @property
    def is_up(self) -> bool:
        return self._site is not None

    @property
    def root_url(self) -> str:
        """``http://HOST:PORT``, without a path."""
        return str(URL.build(scheme="http", host=self._host, port=self._port))

    @property
    def base_url(self) -> str:
        """What the provider's SDK takes as ``base_url``: ``.../v1`` for OpenAI, the root for
        Anthropic (its SDK adds ``/v1`` itself)."""
        return f"{self.root_url}/v1" if self._kind == "openai" else self.root_url

    @property
    def admin_url(self) -> str:
        """The admin API's root: on the admin listener if there is one."""
        if self._admin_runner is None:
            return f"{self.root_url}{ADMIN_PREFIX}"
        root = URL.build(scheme="http", host=self._host, port=self._admin_port)
        return f"{root}{ADMIN_PREFIX}"

    # -- faults and replies ------------------------------------------------------------------

    @property
    def profile(self) -> FaultProfile:
        return self._state.injector.profile

    def set_profile(self, profile: FaultProfile) -> None:
        """Replace the fault profile: draws restart from its seed; its script replaces any
        pending scripted faults."""
        self._state.injector = FaultInjector(profile)

    def script(self, *faults: Fault) -> None:
        """The next requests get `faults`, one each, in order (after any already scripted)."""
        self._state.injector.push(*faults)

    @property
    def pending_script(self) -> int:
        return self._state.injector.pending

    @property
    def reply(self) -> ReplyPolicy:
        return self._state.reply

    def set_reply(self, reply: ReplyPolicy) -> None:
        self._state.reply = reply

    # -- what it saw -------------------------------------------------------------------------

    def stats(self, *, recent: int | None = None) -> LedgerSnapshot:
        """Counters and the `recent` most recent records (all those kept by default)."""
        return self._state.ledger.snapshot(recent=recent)

    def reset_stats(self) -> None:
        self._state.ledger.reset()

    def request(self, request_id: str) -> RequestRecord | None:
        """The record of `request_id` (the ``x-standin-request-id`` response header)."""
        return self._state.ledger.get(request_id)

    async def wait_finished(self, request_id: str) -> RequestRecord:
        """The record of `request_id` once it has an outcome (bound the wait with
        ``asyncio.timeout``)."""
        return await self._state.ledger.wait_finished(request_id)

    async def wait_idle(self) -> None:
        """Return once no request is in flight (bound the wait with ``asyncio.timeout``)."""
        await self._state.ledger.wait_idle()


async def _start_runner(app: web.Application) -> web.AppRunner:
    # No access log: benchmarks send thousands of requests. Handler cancellation is how a
    # client's disconnect reaches a handler that is waiting (see exchange).
    runner = web.AppRunner(
        app,
        access_log=None,
        handler_cancellation=True,
        shutdown_timeout=_SHUTDOWN_TIMEOUT_S,
    )
    await runner.setup()
    return runner

"""Configuration reloads on SIGHUP: re-read and validate `LLM_ROUTER_CONFIG`; on success the
router serves the new table (calls in flight finish on theirs), on error the old configuration
stays and one line says why."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Mapping
from pathlib import Path

from llm_router.config import RouterConfig, load_config
from llm_router.errors import ConfigError
from llm_router.metrics import RouterMetrics

logger = logging.getLogger("llm_router.reload")

# One SIGHUP handler per process, fanned out to every reloader (tests run several routers).
_targets: list[Callable[[], None]] = []


def _on_sighup() -> None:
    for target in list(_targets):
        target()


class ConfigReloader:
    def __init__(
        self,
        install: Callable[[RouterConfig], None],
        path: Path | None,
        *,
        metrics: RouterMetrics,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._install = install
        self._path = path
        self._metrics = metrics
        self._environ = environ
        self._tasks: set[asyncio.Task[bool]] = set()
        self._waiters: list[asyncio.Future[bool]] = []

    async def start(self) -> None:
        """Listen for SIGHUP (a startup hook)."""
        if not _targets:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, _on_sighup)
        _targets.append(self._on_signal)

    async def stop(self) -> None:
        """Stop listening and finish a reload in progress (a shutdown hook)."""
        if self._on_signal in _targets:
            _targets.remove(self._on_signal)
            if not _targets:
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def next_reload(self) -> asyncio.Future[bool]:
        """Resolves when the next reload has been tried: True if it was applied."""
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        return waiter

    def _on_signal(self) -> None:
        task = asyncio.get_running_loop().create_task(self.reload())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def reload(self) -> bool:
        """Re-read the configuration; True if the new one is being served."""
        applied = False
        try:
            config = await asyncio.to_thread(load_config, self._path, environ=self._environ)
        except ConfigError as error:
            logger.error("config reload failed, keeping the current one: %s", error)
            self._metrics.config_reload("invalid")
        else:
            self._install(config)
            applied = True
            self._metrics.config_reload("applied")
            logger.info(
                "config reloaded",
                extra={"source": config.source, "aliases": [m.alias for m in config.models]},
            )
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(applied)
        return applied

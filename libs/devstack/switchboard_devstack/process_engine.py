"""The lifecycle every single-process engine shares: spawn, wait until ready, stop."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self

from switchboard_devstack.processes import ManagedProcess


class ProcessEngine(ABC):
    """An engine that is one child process; subclasses say how to spawn it and probe it."""

    process: ManagedProcess
    #: How long the engine may take to stop after SIGTERM before it is killed.
    stop_grace: float = 10.0

    @abstractmethod
    def spawn(self) -> None:
        """Start the process (without waiting for it to be ready)."""

    @abstractmethod
    def wait_ready(self, *, timeout: float = 30.0) -> None:
        """Return once the engine answers; raise with its last log lines if it does not."""

    def start(self, *, timeout: float = 30.0) -> Self:
        self.spawn()
        try:
            self.wait_ready(timeout=timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, *, grace: float | None = None) -> None:
        self.process.stop(grace=self.stop_grace if grace is None else grace)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

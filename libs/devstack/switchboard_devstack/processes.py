"""Child processes of the dev stack: own process group, output captured, stopped for sure.

Every child is started with `start_new_session=True`, so a Ctrl-C in the terminal reaches only
the supervisor, which then stops children in the right order, and a whole process tree can be
signalled at once. On Linux each child also gets `PR_SET_PDEATHSIG`, so it is sent SIGTERM if
the thread that spawned it dies (including a SIGKILLed parent). The kernel ties that signal to
the spawning *thread*, so spawn from a long-lived thread (the main thread), never from a worker
that exits.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

from switchboard_devstack.errors import EngineStartError, EngineStopError

POLL_INTERVAL = 0.05
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    prctl = libc.prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    typed: Callable[..., int] = prctl
    return typed


# Resolved once in the parent: the preexec hook runs between fork and exec, where it should do
# as little as possible (no imports, no allocation-heavy work).
_PRCTL = _load_prctl()


def _die_with_parent_hook(parent_pid: int) -> Callable[[], None]:
    def hook() -> None:
        if _PRCTL is not None:
            _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        # The parent may have died between fork and prctl; then nobody would ever signal us.
        if os.getppid() != parent_pid:
            os._exit(1)

    return hook


def set_child_subreaper(enabled: bool) -> bool:
    """Adopt (or stop adopting) orphaned descendants, as init would; False if unsupported.

    Daemons that double-fork (pg_ctl start) are otherwise reparented to init, which in some
    containers never reaps them, leaving `<defunct>` entries behind after they stop.
    """
    if _PRCTL is None:
        return False
    return _PRCTL(_PR_SET_CHILD_SUBREAPER, int(enabled), 0, 0, 0) == 0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the OS picks it; races are possible but rare)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something could bind `host:port` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR mirrors what servers set, so a port in TIME_WAIT counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def tail_file(path: Path, lines: int = 20) -> list[str]:
    """The last `lines` lines of a log file, or nothing if it does not exist."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read()
    except OSError:
        return []
    return data.decode("utf-8", "replace").splitlines()[-lines:]


class ManagedProcess:
    """One supervised child: spawned in its own session, output to a log file and a ring buffer.

    `on_exit` is called from the output thread once the child has exited, whether or not a stop
    was requested; check `stop_requested` to tell an expected exit from a crash.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        log_path: Path | None = None,
        echo: Callable[[str, str], None] | None = None,
        on_exit: Callable[[ManagedProcess], None] | None = None,
        keep_lines: int = 200,
    ) -> None:
        self.name = name
        self.argv = [str(arg) for arg in argv]
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.log_path = log_path
        self.stop_requested = False
        self.on_exit = on_exit
        self._echo = echo
        self._lines: collections.deque[str] = collections.deque(maxlen=keep_lines)
        self._lines_lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._exited = threading.Event()

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        if self._proc is not None:
            raise RuntimeError(f"{self.name} was already started")
        log: IO[bytes] | None = None
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            log = self.log_path.open("ab")
        try:
            self._proc = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent_hook(os.getpid()),
            )
        except OSError as exc:
            if log is not None:
                log.close()
            raise EngineStartError(self.name, f"could not run {self.argv[0]}: {exc}") from exc
        self._reader = threading.Thread(
            target=self._pump_output, args=(log,), name=f"devstack-{self.name}", daemon=True
        )
        self._reader.start()

    def terminate(self) -> None:
        """Ask the child's process group to exit (SIGTERM) without waiting; see `stop`."""
        self.stop_requested = True
        if self.running:
            self._signal_group(signal.SIGTERM)

    def stop(self, *, grace: float = 10.0) -> int | None:
        """SIGTERM the child's process group, SIGKILL it after `grace` seconds; return the code."""
        self.stop_requested = True
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired as exc:
                    raise EngineStopError(f"{self.name} (pid {proc.pid}) survived SIGKILL") from exc
        # Anything the child left in its group (helpers, forks) goes with it.
        self._signal_group(signal.SIGKILL)
        if self._reader is not None:
            self._reader.join(timeout=5)
        return proc.returncode

    def send_signal(self, sig: signal.Signals) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(sig)

    def _signal_group(self, sig: signal.Signals) -> None:
        assert self._proc is not None
        # The child called setsid(), so its pid is also its process-group id.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, sig)

    # -- state ---------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def last_lines(self, count: int = 20) -> list[str]:
        with self._lines_lock:
            return list(self._lines)[-count:]

    def wait_exited(self, timeout: float | None = None) -> bool:
        """Block until the child has exited and its output is fully read."""
        return self._exited.wait(timeout)

    def wait_until(
        self,
        probe: Callable[[], bool],
        *,
        timeout: float,
        what: str,
        extra_log: Callable[[], list[str]] | None = None,
    ) -> None:
        """Poll `probe` until it returns True; fail early if the child exits, or at `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            if probe():
                return
            code = self.returncode
            if code is not None:
                self.wait_exited(timeout=2)
                raise EngineStartError(
                    self.name,
                    f"exited with code {code} before {what}",
                    self._log_for_errors(extra_log),
                )
            if time.monotonic() >= deadline:
                raise EngineStartError(
                    self.name,
                    f"not ready after {timeout:.0f}s (waiting for {what})",
                    self._log_for_errors(extra_log),
                )
            time.sleep(POLL_INTERVAL)

    def _log_for_errors(self, extra_log: Callable[[], list[str]] | None) -> list[str]:
        lines = self.last_lines()
        if extra_log is not None:
            lines += extra_log()
        return lines[-30:]

    # -- output --------------------------------------------------------------------------------

    def _pump_output(self, log: IO[bytes] | None) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        try:
            for raw in iter(self._proc.stdout.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                with self._lines_lock:
                    self._lines.append(line)
                if log is not None:
                    log.write(raw)
                    log.flush()
                if self._echo is not None:
                    self._echo(self.name, line)
        finally:
            self._proc.stdout.close()
            if log is not None:
                log.close()
            self._proc.wait()
            self._exited.set()
        if self.on_exit is not None:
            self.on_exit(self)


def wait_for(probe: Callable[[], bool], *, timeout: float, what: str, name: str) -> None:
    """Poll `probe` for a process we do not own (a daemon, an external server)."""
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() >= deadline:
            raise EngineStartError(name, f"not ready after {timeout:.0f}s (waiting for {what})")
        time.sleep(POLL_INTERVAL)


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child: ours, unbuffered Python output, plus `extra`."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    if extra:
        env.update(extra)
    return env

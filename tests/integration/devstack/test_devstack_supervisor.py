"""The stack supervisor: real engines and Envoy, stand-in services, and nothing left behind.

These tests are synchronous on purpose: the stack spawns children from the calling thread
(PR_SET_PDEATHSIG is tied to it), and the main thread is the one that outlives them.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import dataclasses
import http.client
import io
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import grpc
import psutil
import pytest
import redis
from devstack_echo import ECHO_SERVICE, EchoProtos
from grpc_health.v1 import health_pb2, health_pb2_grpc

from switchboard_devstack import processes
from switchboard_devstack.dev_secrets import load_or_create_dev_secrets
from switchboard_devstack.errors import DevstackError, EngineStartError, ServiceDiedError
from switchboard_devstack.stack import Stack
from switchboard_devstack.stack_config import ServiceDefinition, StackConfig

STAND_IN = Path(__file__).parent / "stand_in_service.py"
MISSING_SERVICE = "switchboard.devtest.v1.NotInTheDescriptorService"
_T = TypeVar("_T")


def _run(factory: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    # A private loop in a worker thread: these tests must not touch the session's loop.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def _stand_in(name: str, free_port: Callable[[], int], **options: Any) -> ServiceDefinition:
    return ServiceDefinition(
        name=name,
        command=(sys.executable, str(STAND_IN)),
        grpc_port=free_port(),
        metrics_port=free_port(),
        **options,
    )


def _config(
    tmp_path: Path,
    free_port: Callable[[], int],
    echo_protos: EchoProtos,
    *,
    identity_env: dict[str, str] | None = None,
    conversation_env: dict[str, str] | None = None,
) -> StackConfig:
    services = (
        _stand_in("gateway", free_port, redis_db=0),
        _stand_in(
            "identity",
            free_port,
            database="switchboard_identity",
            uses_nats=True,
            env={"STAND_IN_ENV_FILE": str(tmp_path / "identity.env.json"), **(identity_env or {})},
        ),
        _stand_in(
            "conversation",
            free_port,
            database="switchboard_conversation",
            uses_nats=True,
            env=conversation_env or {},
        ),
        _stand_in(
            "llm-router",
            free_port,
            redis_db=1,
            env={"STAND_IN_ENV_FILE": str(tmp_path / "llm-router.env.json")},
        ),
        _stand_in("connectors", free_port, database="switchboard_connectors", uses_nats=True),
    )
    return StackConfig(
        repo_root=tmp_path,
        data_dir=tmp_path / "data",
        services=services,
        envoy_port=free_port(),
        envoy_admin_port=free_port(),
        nats_port=free_port(),
        nats_monitor_port=free_port(),
        descriptor_path=echo_protos.descriptor,
        public_services=(ECHO_SERVICE, MISSING_SERVICE),
        echo_service_output=False,
        stop_grace=5.0,
    )


def _alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _assert_all_gone(pids: dict[str, int]) -> None:
    survivors = {name: pid for name, pid in pids.items() if _alive(pid)}
    assert survivors == {}


@pytest.fixture(scope="module")
def shared_stack(
    tmp_path_factory: pytest.TempPathFactory, echo_protos: EchoProtos
) -> Iterator[Stack]:
    """One stack for the tests that only look at it (the crash test gets its own)."""
    directory = tmp_path_factory.mktemp("shared_stack")
    stack = Stack(_config(directory, processes.free_port, echo_protos), out=io.StringIO())
    with stack:
        yield stack


def test_stack_reaches_serving_and_stops_leaving_no_process_behind(
    tmp_path: Path, free_port: Callable[[], int], echo_protos: EchoProtos
) -> None:
    stack = Stack(_config(tmp_path, free_port, echo_protos), out=io.StringIO())
    began = time.monotonic()
    stack.start()
    try:
        assert time.monotonic() - began < 30
        pids = stack.pids()
        assert set(pids) == {
            "gateway",
            "identity",
            "conversation",
            "llm-router",
            "connectors",
            "envoy",
            "nats",
            "redis",
            "postgres",
        }
        assert all(_alive(pid) for pid in pids.values())
    finally:
        stack.stop()
    _assert_all_gone(pids)
    stack.wait(timeout=0)  # stopped on request: no failure to raise


def test_banner_says_where_to_point_curl_grpcurl_a_browser_and_the_admin(
    shared_stack: Stack,
) -> None:
    banner = shared_stack.banner()
    cfg = shared_stack.config
    assert f"http://localhost:{cfg.envoy_port}" in banner
    assert f"grpcurl -plaintext localhost:{cfg.envoy_port} list" in banner
    assert f"identity localhost:{cfg.service('identity').grpc_port}" in banner
    assert f"http://127.0.0.1:{cfg.envoy_admin_port}" in banner
    assert str(cfg.data_dir) in banner
    assert "Ctrl-C" in banner


def test_envoy_routes_grpc_to_the_gateway_and_transcodes_only_described_services(
    shared_stack: Stack,
) -> None:
    assert shared_stack.transcoded_services == [ECHO_SERVICE]
    assert shared_stack.skipped_services == [MISSING_SERVICE]
    port = shared_stack.config.envoy_port
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    # JSON is transcoded and reaches the gateway stand-in, which does not implement Echo.
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request(
            "POST",
            "/v1/echo",
            body=b'{"message_text":"hi"}',
            headers={"content-type": "application/json"},
        )
        response = connection.getresponse()
        body = json.loads(response.read())
    finally:
        connection.close()
    assert (response.status, body["code"]) == (501, grpc.StatusCode.UNIMPLEMENTED.value[0])


def test_skipped_public_services_are_logged_by_name(
    tmp_path: Path,
    free_port: Callable[[], int],
    echo_protos: EchoProtos,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="switchboard_devstack")
    with Stack(_config(tmp_path, free_port, echo_protos), out=io.StringIO()):
        pass
    assert MISSING_SERVICE in caplog.text


def test_services_get_their_own_database_redis_db_nats_and_peer_addresses(
    shared_stack: Stack,
) -> None:
    cfg = shared_stack.config
    identity = json.loads((cfg.repo_root / "identity.env.json").read_text())
    router = json.loads((cfg.repo_root / "llm-router.env.json").read_text())

    async def current_database() -> str:
        connection = await asyncpg.connect(identity["DATABASE_URL"])
        try:
            return str(await connection.fetchval("SELECT current_database()"))
        finally:
            await connection.close()

    assert _run(current_database) == "switchboard_identity"
    assert identity["NATS_URL"] == f"nats://127.0.0.1:{cfg.nats_port}"
    assert "REDIS_URL" not in identity
    assert "DATABASE_URL" not in router and "NATS_URL" not in router
    client = redis.Redis.from_url(router["REDIS_URL"])
    try:
        assert client.ping()
        assert client.connection_pool.connection_kwargs["db"] == 1
    finally:
        client.close()
    for env in (identity, router):
        for peer in cfg.services:
            assert env[peer.address_env] == f"127.0.0.1:{peer.grpc_port}"
    assert identity["GRPC_HOST"] == "127.0.0.1"
    assert identity["GRPC_PORT"] == str(cfg.service("identity").grpc_port)
    assert identity["METRICS_PORT"] == str(cfg.service("identity").metrics_port)
    assert identity["LOG_LEVEL"] == "INFO"


def test_identity_gets_a_key_encryption_key_and_the_peers_client_secrets(
    shared_stack: Stack,
) -> None:
    cfg = shared_stack.config
    identity = json.loads((cfg.repo_root / "identity.env.json").read_text())
    router = json.loads((cfg.repo_root / "llm-router.env.json").read_text())
    assert len(base64.b64decode(identity["SIGNING_KEY_ENCRYPTION_KEY"], validate=True)) == 32
    allowed = dict(pair.split("=", 1) for pair in identity["SERVICE_CLIENT_SECRETS"].split(","))
    assert set(allowed) == {"gateway", "conversation", "llm-router", "connectors", "operator"}
    assert router["SERVICE_CLIENT_ID"] == "llm-router"
    assert allowed["llm-router"] == router["SERVICE_CLIENT_SECRET"]


def test_dev_secrets_are_kept_across_restarts_and_private(tmp_path: Path) -> None:
    path = tmp_path / "dev-secrets.json"
    first = load_or_create_dev_secrets(path, ["identity", "gateway"])
    again = load_or_create_dev_secrets(path, ["identity", "gateway", "connectors"])
    assert again.signing_key_encryption_key == first.signing_key_encryption_key
    assert again.service_client_secrets["gateway"] == first.service_client_secrets["gateway"]
    assert "connectors" in again.service_client_secrets
    assert path.stat().st_mode & 0o077 == 0


def test_a_crashing_service_is_reported_by_name_and_the_whole_stack_stops(
    tmp_path: Path, free_port: Callable[[], int], echo_protos: EchoProtos
) -> None:
    stack = Stack(_config(tmp_path, free_port, echo_protos), out=io.StringIO())
    with stack:
        pids = stack.pids()
        os.kill(pids["identity"], signal.SIGUSR1)
        with pytest.raises(ServiceDiedError) as died:
            stack.wait(timeout=30)
    assert died.value.name == "identity"
    assert died.value.returncode == 3
    assert any("boom" in line for line in died.value.log_lines)
    _assert_all_gone(pids)


def test_a_service_failing_at_start_stops_the_stack_and_shows_its_output(
    tmp_path: Path, free_port: Callable[[], int], echo_protos: EchoProtos
) -> None:
    config = _config(
        tmp_path, free_port, echo_protos, conversation_env={"STAND_IN_FAIL_AT_START": "1"}
    )
    stack = Stack(config, out=io.StringIO())
    with pytest.raises(EngineStartError) as failed:
        stack.start()
    assert failed.value.name == "conversation"
    assert "configuration is missing" in str(failed.value)
    pids = stack.pids()
    assert {"postgres", "redis", "nats", "envoy", "gateway", "conversation"} <= set(pids)
    _assert_all_gone(pids)


def test_a_busy_port_is_reported_with_the_variable_that_moves_it(
    tmp_path: Path, free_port: Callable[[], int], echo_protos: EchoProtos
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config = dataclasses.replace(
            _config(tmp_path, free_port, echo_protos), envoy_port=taken.getsockname()[1]
        )
        stack = Stack(config, out=io.StringIO())
        with pytest.raises(DevstackError, match="SWITCHBOARD_ENVOY_PORT"):
            stack.start()
    assert stack.pids() == {}


def test_service_output_is_echoed_with_the_service_name(
    tmp_path: Path, free_port: Callable[[], int], echo_protos: EchoProtos
) -> None:
    config = dataclasses.replace(
        _config(tmp_path, free_port, echo_protos), echo_service_output=True
    )
    out = io.StringIO()
    with Stack(config, out=out):
        pass
    assert any(
        line.startswith("gateway") and '"msg": "serving"' in line
        for line in out.getvalue().splitlines()
    )
    assert '"msg": "serving"' in (config.logs_dir / "gateway.log").read_text()


def test_config_from_env_reads_ports_data_dir_and_external_servers(tmp_path: Path) -> None:
    config = StackConfig.from_env(
        {
            "SWITCHBOARD_DATA_DIR": "state",
            "SWITCHBOARD_ENVOY_PORT": "18080",
            "SWITCHBOARD_LLM_ROUTER_PORT": "15054",
            "SWITCHBOARD_CONNECTORS_METRICS_PORT": "19105",
            "DATABASE_URL": "postgresql://me@db.example/postgres",
            "NATS_URL": "nats://nats.example:4222",
        },
        repo_root=tmp_path,
    )
    assert config.data_dir == tmp_path / "state"
    assert config.envoy_port == 18080
    assert config.envoy_admin_port == 9901
    assert config.service("llm-router").grpc_port == 15054
    assert config.service("llm-router").command[1:] == ("-m", "llm_router")
    assert config.service("connectors").metrics_port == 19105
    assert config.service("gateway").grpc_port == 50051
    assert config.database_url == "postgresql://me@db.example/postgres"
    assert config.redis_url is None
    assert config.nats_url == "nats://nats.example:4222"
    assert config.descriptor == tmp_path / "gen" / "descriptor.binpb"

"""The embedded engines: real servers that start, keep their data and stop without leftovers."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from pathlib import Path

import asyncpg
import nats
import psutil
import pytest
import redis

from switchboard_devstack.errors import EngineStartError
from switchboard_devstack.nats_engine import NatsEngine
from switchboard_devstack.postgres_engine import PostgresEngine
from switchboard_devstack.redis_engine import RedisEngine


def _gone(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def _postgres_processes_for(data_dir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] == "postgres" and str(data_dir) in cmdline:
            found.append(proc)
    return found


async def test_postgres_keeps_its_data_across_a_restart_of_the_same_directory(
    tmp_path: Path,
) -> None:
    engine = PostgresEngine(tmp_path / "pg")
    # Start and stop block for a moment; keep the event loop free meanwhile.
    await asyncio.to_thread(engine.start)
    first_pid = engine.pid
    assert first_pid is not None
    try:
        dsn = await asyncio.to_thread(engine.create_database, "notes")
        connection = await asyncpg.connect(dsn)
        await connection.execute("CREATE TABLE note (body text)")
        await connection.execute("INSERT INTO note VALUES ('kept')")
        await connection.close()
    finally:
        await asyncio.to_thread(engine.stop)
    assert _gone(first_pid)
    assert not _postgres_processes_for(tmp_path / "pg")

    restarted = PostgresEngine(tmp_path / "pg")
    await asyncio.to_thread(restarted.start)
    try:
        connection = await asyncpg.connect(restarted.database_dsn("notes"))
        assert await connection.fetchval("SELECT body FROM note") == "kept"
        await connection.close()
    finally:
        await asyncio.to_thread(restarted.stop)
    assert not _postgres_processes_for(tmp_path / "pg")


async def test_a_fresh_database_is_reachable_with_asyncpg_under_its_own_name(
    fresh_database: str,
) -> None:
    connection = await asyncpg.connect(fresh_database)
    try:
        name = await connection.fetchval("SELECT current_database()")
        await connection.execute("CREATE TABLE scratch (id int)")
    finally:
        await connection.close()
    assert name.startswith("t_")
    assert fresh_database.split("?")[0].endswith(f"/{name}")


async def test_dropping_a_database_disconnects_its_clients_and_removes_it(
    postgres_engine: PostgresEngine,
) -> None:
    dsn = await asyncio.to_thread(postgres_engine.create_database, "t_dropped")
    lingering = await asyncpg.connect(dsn)
    await asyncio.to_thread(postgres_engine.drop_database, "t_dropped")
    assert not await _still_usable(lingering)
    with pytest.raises(asyncpg.InvalidCatalogNameError):
        await asyncpg.connect(dsn)


async def _still_usable(connection: asyncpg.Connection) -> bool:
    try:
        await connection.fetchval("SELECT 1")
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        return False
    finally:
        await connection.close()
    return True


def test_redis_keeps_a_key_across_a_restart_of_the_same_directory(
    tmp_path: Path, free_port: Callable[[], int]
) -> None:
    engine = RedisEngine(tmp_path / "redis", port=free_port())
    with engine:
        client = redis.Redis.from_url(engine.url)
        client.set("greeting", "hello")
        client.close()
        pid = engine.process.pid
    assert pid is not None and _gone(pid)

    with RedisEngine(tmp_path / "redis", port=free_port()) as restarted:
        client = redis.Redis.from_url(restarted.url)
        assert client.get("greeting") == b"hello"
        client.close()


def test_redis_on_a_unix_socket_answers_on_every_logical_database(tmp_path: Path) -> None:
    with RedisEngine(tmp_path / "r") as engine:
        assert engine.url.startswith("unix://")
        client = redis.Redis.from_url(engine.url.replace("db=0", "db=5"))
        client.set("where", "five")
        assert client.connection_pool.connection_kwargs["db"] == 5
        assert client.get("where") == b"five"
        client.close()


def test_fresh_redis_databases_do_not_see_the_shared_one(
    redis_url: str, fresh_redis_url: str, redis_key_prefix: str
) -> None:
    shared = redis.Redis.from_url(redis_url)
    fresh = redis.Redis.from_url(fresh_redis_url)
    try:
        shared.set(f"{redis_key_prefix}k", "shared")
        assert fresh.get(f"{redis_key_prefix}k") is None
        assert fresh.dbsize() == 0
    finally:
        shared.delete(f"{redis_key_prefix}k")
        shared.close()
        fresh.close()


async def test_nats_jetstream_stores_a_stream_and_deduplicates_by_message_id(
    nats_url: str, unique_subject_prefix: str
) -> None:
    client = await nats.connect(nats_url)
    try:
        jetstream = client.jetstream()
        await jetstream.add_stream(
            name=unique_subject_prefix, subjects=[f"{unique_subject_prefix}.>"]
        )
        subject = f"{unique_subject_prefix}.events"
        headers = {"Nats-Msg-Id": "event-1"}
        first = await jetstream.publish(subject, b"one", headers=headers)
        again = await jetstream.publish(subject, b"one", headers=headers)
        info = await jetstream.stream_info(unique_subject_prefix)
    finally:
        await client.close()
    assert not first.duplicate
    assert again.duplicate
    assert info.state.messages == 1


def test_an_engine_that_cannot_start_reports_why_from_its_own_log(
    tmp_path: Path, free_port: Callable[[], int]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        engine = NatsEngine(tmp_path / "nats", port=port)
        with pytest.raises(EngineStartError) as failure:
            engine.start()
    assert failure.value.name == "nats"
    assert "address already in use" in str(failure.value)
    assert not engine.process.running

"""Databases and migrations on a real (embedded) Postgres server."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest

from switchboard_runtime import (
    MigrationError,
    apply_migrations,
    create_pool,
    ensure_database,
)

_database_numbers = itertools.count()


@pytest.fixture
async def pool(postgres_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a fresh database of its own."""
    dsn = await ensure_database(postgres_dsn, f"migrations_{next(_database_numbers)}")
    pool = await create_pool(dsn, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture
def migrations(tmp_path: Path) -> Callable[..., Path]:
    """`migrations(**{"0001_name": "SQL"})` writes a migrations folder and returns it."""

    def write(**files: str) -> Path:
        directory = tmp_path / "example" / "migrations"
        directory.mkdir(parents=True, exist_ok=True)
        for name, sql in files.items():
            (directory / f"{name}.sql").write_text(sql)
        return directory

    return write


ITEMS = {
    "0001_create_items": "CREATE TABLE items (id int PRIMARY KEY);",
    "0002_add_item_names": "ALTER TABLE items ADD COLUMN name text NOT NULL DEFAULT '';",
}


async def test_migrations_apply_in_order_and_are_recorded(
    pool: asyncpg.Pool, migrations: Callable[..., Path]
) -> None:
    directory = migrations(**ITEMS)

    applied = await apply_migrations(pool, directory)

    assert applied == ["0001_create_items", "0002_add_item_names"]
    await pool.execute("INSERT INTO items (id, name) VALUES (1, 'first')")
    rows = await pool.fetch("SELECT version, name, checksum FROM schema_migrations ORDER BY 1")
    assert [(row["version"], row["name"]) for row in rows] == [
        ("0001", "0001_create_items"),
        ("0002", "0002_add_item_names"),
    ]
    expected = hashlib.sha256(ITEMS["0001_create_items"].encode()).hexdigest()
    assert rows[0]["checksum"] == expected


async def test_running_migrations_again_changes_nothing(
    pool: asyncpg.Pool, migrations: Callable[..., Path]
) -> None:
    directory = migrations(**ITEMS)
    await apply_migrations(pool, directory)

    assert await apply_migrations(pool, directory) == []
    assert await pool.fetchval("SELECT count(*) FROM schema_migrations") == 2


async def test_only_new_migrations_run_after_a_release_adds_one(
    pool: asyncpg.Pool, migrations: Callable[..., Path]
) -> None:
    await apply_migrations(pool, migrations(**ITEMS))

    directory = migrations(**{"0003_index_item_names": "CREATE INDEX ON items (name);"})

    assert await apply_migrations(pool, directory) == ["0003_index_item_names"]


async def test_editing_an_applied_migration_is_refused(
    pool: asyncpg.Pool, migrations: Callable[..., Path]
) -> None:
    directory = migrations(**ITEMS)
    await apply_migrations(pool, directory)
    (directory / "0001_create_items.sql").write_text("CREATE TABLE items (id bigint);")

    with pytest.raises(
        MigrationError, match="0001_create_items: file changed after it was applied"
    ):
        await apply_migrations(pool, directory)


@pytest.mark.parametrize(
    ("files", "problem"),
    [
        ({"0001_a": "SELECT 1;", "0003_c": "SELECT 1;"}, "migration 0002 is missing"),
        ({"0001_a": "SELECT 1;", "0001_b": "SELECT 1;"}, "duplicate migration number 0001"),
        ({"1_a": "SELECT 1;"}, "must be named NNNN_description.sql"),
    ],
    ids=["gap", "duplicate", "badly-named"],
)
async def test_a_malformed_migrations_folder_is_refused_before_touching_the_database(
    pool: asyncpg.Pool, migrations: Callable[..., Path], files: dict[str, str], problem: str
) -> None:
    with pytest.raises(MigrationError, match=problem):
        await apply_migrations(pool, migrations(**files))

    assert await pool.fetchval("SELECT to_regclass('schema_migrations')") is None


async def test_a_failing_migration_writes_nothing_of_itself(
    pool: asyncpg.Pool, migrations: Callable[..., Path]
) -> None:
    directory = migrations(
        **ITEMS,
        **{"0003_broken": "CREATE TABLE notes (id int); INSERT INTO nowhere VALUES (1);"},
    )

    with pytest.raises(MigrationError, match='0003_broken failed: relation "nowhere"'):
        await apply_migrations(pool, directory)

    assert await pool.fetchval("SELECT to_regclass('notes')") is None
    assert await pool.fetchval("SELECT max(version) FROM schema_migrations") == "0002"


async def test_replicas_migrating_at_once_apply_each_file_exactly_once(
    postgres_dsn: str, migrations: Callable[..., Path]
) -> None:
    dsn = await ensure_database(postgres_dsn, f"replicas_{next(_database_numbers)}")
    directory = migrations(
        **{
            "0001_create_log": "CREATE TABLE log (step int);",
            "0002_step": "INSERT INTO log VALUES (2);",
            "0003_step": "INSERT INTO log VALUES (3);",
        }
    )
    pools = [await create_pool(dsn, max_size=2) for _ in range(4)]
    try:
        results = await asyncio.gather(*(apply_migrations(p, directory) for p in pools))
        steps = await pools[0].fetch("SELECT step FROM log ORDER BY step")
    finally:
        await asyncio.gather(*(p.close() for p in pools))

    assert sorted(name for result in results for name in result) == [
        "0001_create_log",
        "0002_step",
        "0003_step",
    ]
    assert [row["step"] for row in steps] == [2, 3]


async def test_concurrent_ensure_database_calls_all_get_the_same_working_database(
    postgres_dsn: str,
) -> None:
    name = f"shared_{next(_database_numbers)}"

    dsns = await asyncio.gather(*(ensure_database(postgres_dsn, name) for _ in range(4)))

    assert len(set(dsns)) == 1
    connection = await asyncpg.connect(dsns[0])
    try:
        assert await connection.fetchval("SELECT current_database()") == name
    finally:
        await connection.close()


async def test_ensure_database_refuses_a_name_that_is_not_a_plain_identifier(
    postgres_dsn: str,
) -> None:
    with pytest.raises(ValueError, match="invalid database name"):
        await ensure_database(postgres_dsn, 'x"; DROP DATABASE postgres; --')

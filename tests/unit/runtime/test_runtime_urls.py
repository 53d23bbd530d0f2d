"""Connection URLs are rewritten and redacted without losing their shape."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from switchboard_runtime.postgres import database_dsn
from switchboard_runtime.redaction import redact_url


def test_database_dsn_keeps_credentials_host_port_and_options_of_a_tcp_url() -> None:
    dsn = database_dsn(
        "postgresql://app:p%40ss@db.internal:6432/postgres?sslmode=require&dbname=other",
        "identity",
    )

    parts = urlsplit(dsn)
    assert parts.netloc == "app:p%40ss@db.internal:6432"
    assert parts.path == "/identity"
    assert parse_qs(parts.query) == {"sslmode": ["require"]}


def test_database_dsn_rewrites_a_unix_socket_url() -> None:
    dsn = database_dsn("postgresql://postgres:@/postgres?host=/tmp/pg/sock", "conversation")

    assert dsn == "postgresql://postgres:@/conversation?host=/tmp/pg/sock"


def test_database_dsn_refuses_what_is_not_a_postgres_url() -> None:
    with pytest.raises(ValueError, match="postgresql://"):
        database_dsn("host=/tmp dbname=x", "identity")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql://app:hunter2@db:5432/identity?sslmode=require",
            "postgresql://***@db:5432/identity",
        ),
        ("nats://s3cr3ttoken@nats:4222", "nats://***@nats:4222"),
        ("redis://:pw@cache:6379/0?password=pw", "redis://***@cache:6379/0"),
        ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
        ("unix:///run/redis.sock", "unix:///run/redis.sock"),
    ],
)
def test_redacted_urls_keep_the_location_and_drop_every_credential(url: str, shown: str) -> None:
    assert redact_url(url) == shown

"""Safe-to-log forms of connection URLs (no credentials, no query options)."""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["redact_url"]


def redact_url(url: str) -> str:
    """`url` with any user info replaced by `***` and the query dropped.

    User info can be a password or a bare token (`nats://TOKEN@host`), and query options can
    carry passwords (`?password=`), so neither is ever logged.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparseable url>"
    netloc = host if ":" not in host else f"[{host}]"
    if port is not None:
        netloc = f"{netloc}:{port}"
    if parts.username is not None or parts.password is not None:
        netloc = f"***@{netloc}"
    # Built by hand: urlunsplit drops the `//` of an empty host (`unix:///run/redis.sock`).
    return f"{parts.scheme}://{netloc}{parts.path}"

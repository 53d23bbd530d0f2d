"""Opaque page tokens for keyset pagination, and the page-size rule every list method shares.

A token encodes the sort key of the last item of a page (plus which list it belongs to), so
the next page is `WHERE (key) > (token key)`: stable under concurrent inserts, no OFFSET
scans. Tokens are opaque to clients; a token that does not decode, or that belongs to another
list, is a bad argument.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final, TypeVar

T = TypeVar("T")

DEFAULT_PAGE_SIZE: Final = 50


class InvalidPageTokenError(ValueError):
    """The page token is malformed or was issued for another list."""


def page_size(requested: int, *, default: int = DEFAULT_PAGE_SIZE) -> int:
    """The page size to use: the requested one, or `default` when 0."""
    return requested if requested > 0 else default


def encode_page_token(scope: str, key: list[Any]) -> str:
    """A token for the page after the item whose sort key is `key` in the list `scope`."""
    raw = json.dumps({"s": scope, "k": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_page_token(token: str, scope: str) -> list[Any] | None:
    """The sort key a token carries; None for an empty token (the first page)."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        decoded = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidPageTokenError("malformed page token") from error
    if not isinstance(decoded, dict) or decoded.get("s") != scope:
        raise InvalidPageTokenError("page token belongs to another list")
    key = decoded.get("k")
    if not isinstance(key, list):
        raise InvalidPageTokenError("malformed page token")
    return key


def time_key_after(token: str, scope: str) -> tuple[datetime, str] | None:
    """The (time, id) sort key a token of a time-ordered list carries; None on the first page."""
    key = decode_page_token(token, scope)
    if key is None:
        return None
    try:
        return datetime.fromisoformat(str(key[0])), str(key[1])
    except (IndexError, ValueError) as error:
        raise InvalidPageTokenError("malformed page token") from error


def time_keyed_page(
    fetched: list[T], limit: int, scope: str, key: Callable[[T], tuple[datetime, str]]
) -> tuple[list[T], str]:
    """Cut `fetched` (asked for `limit + 1`) to a page, with the token of the next one."""
    if len(fetched) <= limit:
        return fetched, ""
    moment, item_id = key(fetched[limit - 1])
    return fetched[:limit], encode_page_token(scope, [moment.isoformat(), item_id])

"""Conversions between timezone-aware datetimes and google.protobuf.Timestamp."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from google.protobuf.timestamp_pb2 import Timestamp

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp(moment: datetime | None) -> Timestamp | None:
    """`moment` (timezone-aware) as a Timestamp; None stays None (the field is left unset).

    Integer arithmetic instead of Timestamp.FromDatetime, which goes through a time tuple and
    costs several times more: answers carry several timestamps and sit on every hot path.
    """
    if moment is None:
        return None
    delta = moment - _EPOCH
    return Timestamp(seconds=delta.days * 86_400 + delta.seconds, nanos=delta.microseconds * 1000)


def from_timestamp(stamp: Timestamp) -> datetime:
    """A Timestamp as a timezone-aware UTC datetime."""
    return stamp.ToDatetime(tzinfo=UTC)

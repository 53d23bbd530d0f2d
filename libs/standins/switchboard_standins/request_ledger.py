"""What a stand-in saw: per-request records and counters that tests and benchmarks assert on.

Every request to a provider path gets a `RequestRecord` with a server-assigned id (also sent back
in the ``x-standin-request-id`` header) and ends with one outcome:

    completed      the whole response was written (any status: replies, validation errors and
                   injected error statuses alike; see `status` and `fault`)
    client_closed  the client went away before the response was finished (a cancelled or
                   timed-out stream, a hedged request's loser)
    cut            the stand-in closed the connection mid-answer (the "cut" fault)
    reset          the stand-in reset the connection without answering (the "reset" fault)
    server_down    the stand-in went down or shut down while answering
    failed         the stand-in itself failed (a bug: aiohttp logs it and answers 500)

Counters survive the bounded list of recent records, so a benchmark's totals stay exact however
many requests it sends. Tests wait for a request to end with `wait_finished` (no sleeping).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter, OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

__all__ = ["LedgerSnapshot", "Outcome", "RequestLedger", "RequestRecord"]

Outcome = Literal[
    "in_flight", "completed", "client_closed", "cut", "reset", "server_down", "failed"
]


@dataclass(slots=True)
class RequestRecord:
    """One request as the stand-in saw it. Times are Unix epoch seconds.

    client_request_id  the client's ``x-request-id`` header, if it sent one
    retry_count        the SDK's ``x-stainless-retry-count`` header (0 on a first attempt)
    fault              the injected fault's name (error_503, reset, cut, stall, tail) or None
    status             the HTTP status sent, None if none was (reset, client gone early)
    """

    id: str
    path: str
    started_at: float
    client_request_id: str | None = None
    retry_count: int | None = None
    model: str | None = None
    stream: bool = False
    fault: str | None = None
    status: int | None = None
    finished_at: float | None = None
    outcome: Outcome = "in_flight"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": self.path,
            "model": self.model,
            "stream": self.stream,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "outcome": self.outcome,
            "status": self.status,
            "fault": self.fault,
            "client_request_id": self.client_request_id,
            "retry_count": self.retry_count,
        }


@dataclass(frozen=True, slots=True)
class LedgerSnapshot:
    """Counters and recent records at one moment (copies: later requests do not change them).

    received   requests received, per path
    outcomes   finished requests, per outcome
    statuses   responses sent, per HTTP status
    faults     injected faults, per name
    in_flight  requests started and not finished
    recent     the most recent records, oldest first
    """

    received: dict[str, int]
    outcomes: dict[str, int]
    statuses: dict[int, int]
    faults: dict[str, int]
    in_flight: int
    recent: tuple[RequestRecord, ...]

    @property
    def completed(self) -> int:
        return self.outcomes.get("completed", 0)

    @property
    def client_closed(self) -> int:
        return self.outcomes.get("client_closed", 0)

    def to_json(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "outcomes": self.outcomes,
            "statuses": {str(status): count for status, count in self.statuses.items()},
            "faults": self.faults,
            "in_flight": self.in_flight,
            "recent": [record.to_json() for record in self.recent],
        }


class RequestLedger:
    """Records requests for one stand-in. Not thread-safe: it lives on the server's event loop."""

    def __init__(self, *, keep: int = 1000) -> None:
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self._keep = keep
        # A random prefix keeps ids unique across stand-ins and restarts within one test run.
        self._prefix = secrets.token_hex(3)
        self._next = 0
        self._records: OrderedDict[str, RequestRecord] = OrderedDict()
        self._received: Counter[str] = Counter()
        self._outcomes: Counter[str] = Counter()
        self._statuses: Counter[int] = Counter()
        self._faults: Counter[str] = Counter()
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._waiters: dict[str, list[asyncio.Future[RequestRecord]]] = {}

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def begin(self, path: str, headers: Mapping[str, str]) -> RequestRecord:
        """Open a record for a request that just arrived."""
        self._next += 1
        retry = headers.get("x-stainless-retry-count")
        record = RequestRecord(
            id=f"{self._prefix}-{self._next}",
            path=path,
            started_at=time.time(),
            client_request_id=headers.get("x-request-id"),
            retry_count=int(retry) if retry is not None and retry.isdigit() else None,
        )
        self._records[record.id] = record
        if len(self._records) > self._keep:
            self._records.popitem(last=False)
        self._received[path] += 1
        self._in_flight += 1
        self._idle.clear()
        return record

    def note_fault(self, record: RequestRecord, name: str | None) -> None:
        record.fault = name
        if name is not None:
            self._faults[name] += 1

    def finish(self, record: RequestRecord, outcome: Outcome, *, status: int | None = None) -> None:
        """Close `record` with `outcome`; only the first call for a record counts."""
        if record.outcome != "in_flight":
            return
        record.outcome = outcome
        record.finished_at = time.time()
        if status is not None:
            record.status = status
            self._statuses[status] += 1
        self._outcomes[outcome] += 1
        self._in_flight -= 1
        if not self._in_flight:
            self._idle.set()
        for waiter in self._waiters.pop(record.id, ()):
            if not waiter.done():
                waiter.set_result(replace(record))

    def get(self, request_id: str) -> RequestRecord | None:
        """A copy of the record with this id, if it is still among the recent ones."""
        record = self._records.get(request_id)
        return None if record is None else replace(record)

    async def wait_finished(self, request_id: str) -> RequestRecord:
        """The record of `request_id` once it has an outcome (a copy).

        Raises KeyError for an id that is not among the recent records.
        """
        record = self._records.get(request_id)
        if record is None:
            raise KeyError(f"no recent request with id {request_id!r}")
        if record.outcome != "in_flight":
            return replace(record)
        waiter: asyncio.Future[RequestRecord] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(request_id, []).append(waiter)
        return await waiter

    async def wait_idle(self) -> None:
        """Return once no request is in flight."""
        await self._idle.wait()

    def snapshot(self, *, recent: int | None = None) -> LedgerSnapshot:
        """Counters and (copies of) the last `recent` records, all of those kept by default."""
        records = list(self._records.values())
        if recent is not None:
            records = records[-recent:] if recent > 0 else []
        return LedgerSnapshot(
            received=dict(self._received),
            outcomes=dict(self._outcomes),
            statuses=dict(self._statuses),
            faults=dict(self._faults),
            in_flight=self._in_flight,
            recent=tuple(replace(record) for record in records),
        )

    def reset(self) -> None:
        """Forget counters and finished records; requests in flight are still tracked."""
        self._received.clear()
        self._outcomes.clear()
        self._statuses.clear()
        self._faults.clear()
        for request_id in [i for i, r in self._records.items() if r.outcome != "in_flight"]:
            del self._records[request_id]

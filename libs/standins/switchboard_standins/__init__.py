"""Local stand-ins for the LLM provider APIs (OpenAI, Anthropic), with fault injection.

They speak the providers' real wire formats over real sockets, so the real `openai` and
`anthropic` SDKs (and the LLM router) talk to them unchanged. Replies are deterministic, faults
are scripted or drawn from a seeded profile, and every request is recorded for assertions.

In-process (tests)::

    async with StandinServer("anthropic", api_key="k", profile=FaultProfile(latency_ms=20)):
        ...

As a process (benchmarks, ``make run``), one provider per process::

    python -m switchboard_standins openai --port 8100 --api-key sk-local

Modules: `server` (StandinServer), `faults` (Fault, FaultProfile), `replies` (ReplyPolicy),
`request_ledger` (records and counters), `openai_api` / `anthropic_api` (wire formats),
`exchange` (one request's life, shared), `admin_api` (``/_standin`` JSON API).
"""

from __future__ import annotations

from switchboard_standins.faults import NO_FAULT, Fault, FaultInjector, FaultProfile
from switchboard_standins.replies import FinishReason, Reply, ReplyPolicy, count_tokens
from switchboard_standins.request_ledger import LedgerSnapshot, Outcome, RequestRecord
from switchboard_standins.server import ProviderKind, StandinServer

__all__ = [
    "NO_FAULT",
    "Fault",
    "FaultInjector",
    "FaultProfile",
    "FinishReason",
    "LedgerSnapshot",
    "Outcome",
    "ProviderKind",
    "Reply",
    "ReplyPolicy",
    "RequestRecord",
    "StandinServer",
    "count_tokens",
]

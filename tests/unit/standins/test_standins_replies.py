"""Deterministic replies and the request ledger (no sockets)."""

from __future__ import annotations

import asyncio

import pytest

from switchboard_standins import FinishReason, ReplyPolicy, count_tokens
from switchboard_standins.replies import generate_reply
from switchboard_standins.request_ledger import RequestLedger


def test_a_reply_echoes_the_prompt_one_word_per_token() -> None:
    reply = generate_reply(ReplyPolicy(), "what  is\nup")

    assert reply.tokens == ("Echo:", " what", "  is", "\nup")
    assert reply.text == "Echo: what  is\nup"
    assert reply.finish is FinishReason.END
    assert count_tokens(reply.text) == len(reply.tokens)


def test_filler_words_lengthen_a_canned_reply() -> None:
    reply = generate_reply(ReplyPolicy(canned="Sure.", filler_tokens=14), "ignored")

    assert len(reply.tokens) == 15
    assert reply.text.startswith("Sure. lorem ipsum dolor")


def test_max_tokens_keeps_the_first_tokens() -> None:
    reply = generate_reply(ReplyPolicy(), "one two three", max_tokens=2)

    assert (reply.text, reply.finish) == ("Echo: one", FinishReason.MAX_TOKENS)


def test_the_earliest_stop_sequence_ends_the_reply_even_inside_a_word() -> None:
    reply = generate_reply(ReplyPolicy(), "alpha beta gamma", stop=["gamma", "eta"])

    assert reply.text == "Echo: alpha b"
    assert (reply.finish, reply.stop_sequence) == (FinishReason.STOP_SEQUENCE, "eta")


def test_max_tokens_wins_when_it_ends_the_reply_before_the_stop_sequence() -> None:
    reply = generate_reply(ReplyPolicy(), "alpha beta gamma", max_tokens=2, stop=["gamma"])

    assert (reply.text, reply.finish, reply.stop_sequence) == (
        "Echo: alpha",
        FinishReason.MAX_TOKENS,
        None,
    )


def test_a_negative_filler_count_is_rejected() -> None:
    with pytest.raises(ValueError):
        ReplyPolicy(filler_tokens=-1)


async def test_the_ledger_wakes_a_waiter_when_its_request_ends() -> None:
    ledger = RequestLedger()
    record = ledger.begin("/v1/messages", {"x-request-id": "abc", "x-stainless-retry-count": "2"})

    async def end_it() -> None:
        ledger.finish(record, "client_closed")

    # gather starts the waiter first: it is registered and waiting when the request ends.
    async with asyncio.timeout(1):
        seen, _ = await asyncio.gather(ledger.wait_finished(record.id), end_it())
    assert (seen.outcome, seen.client_request_id, seen.retry_count) == ("client_closed", "abc", 2)
    assert ledger.in_flight == 0


def test_only_a_record_s_first_outcome_counts() -> None:
    ledger = RequestLedger()
    record = ledger.begin("/v1/messages", {})

    ledger.finish(record, "cut", status=200)
    ledger.finish(record, "failed")

    snapshot = ledger.snapshot()
    assert snapshot.outcomes == {"cut": 1}
    assert snapshot.recent[0].outcome == "cut"


def test_the_ledger_keeps_the_latest_records_and_exact_counters() -> None:
    ledger = RequestLedger(keep=3)
    for _ in range(5):
        ledger.finish(ledger.begin("/v1/chat/completions", {}), "completed", status=200)

    snapshot = ledger.snapshot()
    assert [record.id.rsplit("-", 1)[1] for record in snapshot.recent] == ["3", "4", "5"]
    assert snapshot.completed == 5
    assert snapshot.received == {"/v1/chat/completions": 5}


def test_resetting_the_ledger_keeps_requests_in_flight() -> None:
    ledger = RequestLedger()
    ledger.finish(ledger.begin("/v1/messages", {}), "completed", status=200)
    running = ledger.begin("/v1/messages", {})

    ledger.reset()

    snapshot = ledger.snapshot()
    assert [record.id for record in snapshot.recent] == [running.id]
    assert (snapshot.received, snapshot.in_flight) == ({}, 1)

"""Fault profiles: scripted sequences, seeded draws, validation and JSON form (no sockets)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from switchboard_standins import Fault, FaultInjector, FaultProfile

TAILED = FaultProfile(seed=7, latency_ms=10, tail_probability=0.05, tail_factor=20)


def decisions(profile: FaultProfile, count: int) -> list[Fault]:
    injector = FaultInjector(profile)
    return [injector.next_fault() for _ in range(count)]


def test_a_seed_fixes_which_requests_land_in_the_heavy_tail() -> None:
    first = [fault.latency_ms for fault in decisions(TAILED, 2000)]
    again = [fault.latency_ms for fault in decisions(TAILED, 2000)]

    assert first == again
    assert set(first) == {10.0, 200.0}
    # About 5%: the exact count is fixed by the seed, the bounds say what it means.
    assert 60 <= first.count(200.0) <= 140


def test_another_seed_draws_another_sequence() -> None:
    first = [fault.tail for fault in decisions(TAILED, 500)]
    other = [fault.tail for fault in decisions(replace(TAILED, seed=8), 500)]

    assert first != other


def test_adding_an_error_rate_leaves_the_tail_decisions_unchanged() -> None:
    with_errors = replace(TAILED, error_rates={503: 0.2})

    tails = [fault.tail for fault in decisions(TAILED, 500)]
    tails_with_errors = [fault.tail for fault in decisions(with_errors, 500)]

    assert tails == tails_with_errors


def test_tail_requests_are_reported_as_tail() -> None:
    names = {fault.name for fault in decisions(TAILED, 500)}

    assert names == {None, "tail"}


def test_error_rates_split_the_draws_between_statuses() -> None:
    profile = FaultProfile(seed=1, error_rates={503: 0.3, 429: 0.2}, retry_after_s=2)

    faults = decisions(profile, 2000)
    statuses = [fault.status for fault in faults]

    assert 500 <= statuses.count(503) <= 700
    assert 300 <= statuses.count(429) <= 500
    assert {f.retry_after_s for f in faults if f.status == 429} == {2}
    assert {f.retry_after_s for f in faults if f.status == 503} == {None}


def test_the_script_comes_first_in_order_then_the_profile_applies() -> None:
    profile = FaultProfile(latency_ms=5, script=(Fault.error(503), Fault.connection_reset()))
    injector = FaultInjector(profile)
    injector.push(Fault.cut(2))

    names = [injector.next_fault().name for _ in range(5)]

    assert names == ["error_503", "reset", "cut", None, None]
    assert injector.pending == 0
    assert injector.next_fault() == Fault(latency_ms=5)


def test_a_scripted_fault_does_not_inherit_the_profile_s_latency() -> None:
    injector = FaultInjector(FaultProfile(latency_ms=300, script=(Fault.error(500),)))

    assert injector.next_fault().latency_ms == 0


def test_a_quiet_profile_gives_every_request_the_same_timing() -> None:
    profile = FaultProfile(latency_ms=3, first_token_ms=4, inter_token_ms=1)

    assert profile.is_quiet
    assert set(decisions(profile, 10)) == {Fault(latency_ms=3, first_token_ms=4, inter_token_ms=1)}


def test_a_certain_reset_wins_over_a_certain_error() -> None:
    profile = FaultProfile(reset_probability=1.0, error_rates={500: 1.0}, cut_probability=1.0)

    assert {fault.name for fault in decisions(profile, 10)} == {"reset"}


@pytest.mark.parametrize(
    "fields",
    [
        {"tail_probability": 1.5},
        {"tail_factor": 0.5},
        {"latency_ms": -1},
        {"error_rates": {200: 0.1}},
        {"error_rates": {500: 0.6, 503: 0.6}},
        {"cut_after_tokens": -1},
    ],
)
def test_an_impossible_profile_is_rejected(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        FaultProfile(**fields)  # type: ignore[arg-type]


def test_a_fault_has_at_most_one_outcome() -> None:
    with pytest.raises(ValueError, match="at most one"):
        Fault(status=503, reset=True)


def test_a_profile_survives_a_json_round_trip() -> None:
    profile = FaultProfile(
        seed=3,
        latency_ms=12.5,
        tail_probability=0.05,
        error_rates={503: 0.1, 429: 0.05},
        retry_after_s=None,
        script=(Fault.rate_limited(2), Fault.stall(4), Fault.delay(50, inter_token_ms=5)),
    )

    assert FaultProfile.from_json(profile.to_json()) == profile


def test_profile_json_with_an_unknown_field_is_rejected() -> None:
    with pytest.raises(ValueError, match="latency"):
        FaultProfile.from_json({"latency": 10})


def test_profile_json_with_a_non_numeric_rate_is_rejected() -> None:
    with pytest.raises(ValueError, match="503"):
        FaultProfile.from_json({"error_rates": {"503": "often"}})

"""The retry budget: ratio x requests plus a floor, over a sliding window."""

from __future__ import annotations

from llm_router.clock import ManualClock
from llm_router.config import RetryBudgetConfig
from llm_router.retry_budget import RetryBudget

CONFIG = RetryBudgetConfig(ratio=0.1, min_per_second=1.0, window_s=10.0)


def _spend_all(budget: RetryBudget) -> int:
    spent = 0
    while budget.try_spend():
        spent += 1
    return spent


def test_with_no_traffic_only_the_floor_is_allowed() -> None:
    assert _spend_all(RetryBudget(CONFIG, clock=ManualClock())) == 10


def test_retries_are_a_tenth_of_the_requests_plus_the_floor() -> None:
    budget = RetryBudget(CONFIG, clock=ManualClock())
    for _ in range(300):
        budget.record_request()

    assert budget.available() == 40
    assert _spend_all(budget) == 40
    assert budget.available() == 0


def test_a_refund_gives_one_back() -> None:
    budget = RetryBudget(CONFIG, clock=ManualClock())
    _spend_all(budget)
    budget.refund()

    assert budget.try_spend()
    assert not budget.try_spend()


def test_spending_leaves_the_window_as_time_passes() -> None:
    clock = ManualClock()
    budget = RetryBudget(CONFIG, clock=clock)
    _spend_all(budget)
    clock.advance(5)
    assert budget.available() == 0
    clock.advance(5.1)

    assert budget.available() == 10


def test_a_reload_changes_the_ratio_and_keeps_the_counts() -> None:
    budget = RetryBudget(CONFIG, clock=ManualClock())
    for _ in range(100):
        budget.record_request()
    budget.configure(RetryBudgetConfig(ratio=0.5, min_per_second=0, window_s=10.0))

    assert budget.available() == 50

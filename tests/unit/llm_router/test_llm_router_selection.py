"""Smooth weighted round-robin: exact proportions, spread out, and no burst for a deployment
that was refused while its breaker was open."""

from __future__ import annotations

from collections import Counter

from llm_router.selection import SmoothWeightedRoundRobin

WEIGHTS = [("a", 3), ("b", 1)]


def test_three_to_one_weights_interleave_a_a_b_a() -> None:
    selector = SmoothWeightedRoundRobin()

    picks = [selector.pick(WEIGHTS).order[0] for _ in range(8)]

    assert picks == ["a", "a", "b", "a"] * 2


def test_the_preference_order_lists_every_candidate() -> None:
    assert SmoothWeightedRoundRobin().pick(WEIGHTS).order == ("a", "b")


def _run(selector: SmoothWeightedRoundRobin, refused: set[str], calls: int) -> Counter[str]:
    weights = [("a", 1), ("b", 1), ("c", 2)]
    served: Counter[str] = Counter()
    for _ in range(calls):
        pick = selector.pick(weights)
        admitted = next(d for d in pick.order if d not in refused)
        selector.settle(pick, admitted, [d for d in pick.order if d in refused])
        served[admitted] += 1
    return served


def test_a_refused_deployment_leaves_the_others_proportions_exact() -> None:
    assert _run(SmoothWeightedRoundRobin(), {"b"}, 300) == {"a": 100, "c": 200}


def test_a_deployment_refused_for_long_gets_no_burst_when_it_recovers() -> None:
    selector = SmoothWeightedRoundRobin()
    _run(selector, {"b"}, 1001)

    assert _run(selector, set(), 4) == {"a": 1, "b": 1, "c": 2}


def test_a_pick_nothing_admitted_undoes_the_step() -> None:
    selector = SmoothWeightedRoundRobin()
    pick = selector.pick(WEIGHTS)
    selector.settle(pick, None, ["a", "b"])

    assert [selector.pick(WEIGHTS).order[0] for _ in range(4)] == ["a", "a", "b", "a"]

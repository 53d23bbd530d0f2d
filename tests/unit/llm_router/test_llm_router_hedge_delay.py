"""Hedge delays: the observed percentile, clamped, and the upper bound until enough samples."""

from __future__ import annotations

from llm_router.config import HedgingConfig
from llm_router.hedging import hedge_delay
from llm_router.stats import LatencyWindow

CONFIG = HedgingConfig(percentile=95, min_delay_s=0.02, max_delay_s=1.0, min_samples=20)


def _window(samples: list[float]) -> LatencyWindow:
    window = LatencyWindow()
    for sample in samples:
        window.add(sample)
    return window


def test_percentiles_are_nearest_rank() -> None:
    window = _window([i / 100 for i in range(1, 101)])

    assert (window.percentile(50), window.percentile(95), window.percentile(100)) == (
        0.5,
        0.95,
        1.0,
    )
    assert LatencyWindow().percentile(50) is None


def test_the_window_keeps_only_the_most_recent_samples() -> None:
    window = LatencyWindow(size=10)
    for sample in [9.0] * 10 + [1.0] * 10:
        window.add(sample)

    assert (window.count, window.percentile(100)) == (10, 1.0)


def test_until_there_are_enough_samples_the_delay_is_the_upper_bound() -> None:
    assert hedge_delay(CONFIG, _window([0.05] * 19)) == 1.0


def test_the_delay_is_the_observed_p95() -> None:
    assert hedge_delay(CONFIG, _window([0.05] * 95 + [0.5] * 5)) == 0.05


def test_the_delay_is_clamped_to_its_bounds() -> None:
    assert hedge_delay(CONFIG, _window([0.001] * 50)) == 0.02
    assert hedge_delay(CONFIG, _window([5.0] * 50)) == 1.0

"""Weighted selection: nginx's smooth weighted round-robin over one alias's deployments.

Smooth WRR spreads picks evenly (weights 3:1 give A A B A, not A A A B) and is exact over every
cycle, which keeps load proportional even at low traffic where weighted random drifts. The
pick is synchronous and charged at once, so concurrent calls see each other's picks; Redis
then admits the first deployment of the preference order whose breaker allows it, and
`settle` moves the charge to what was admitted, handing refused deployments their step back
(so a deployment with an open breaker does not pile up credit and get a burst on recovery).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Pick:
    """One selection step: every eligible deployment, most preferred first."""

    order: tuple[str, ...]
    weights: dict[str, int]
    total: int


class SmoothWeightedRoundRobin:
    """The selection state of one alias (not shared between replicas: each balances its own
    calls, which adds up to the same proportions)."""

    def __init__(self) -> None:
        self._current: dict[str, int] = {}

    def pick(self, candidates: Sequence[tuple[str, int]]) -> Pick:
        """Advance one step over `candidates` ((deployment id, weight > 0) pairs)."""
        current = self._current
        total = 0
        for deployment_id, weight in candidates:
            current[deployment_id] = current.get(deployment_id, 0) + weight
            total += weight
        # sorted() is stable, so ties go to the deployment listed first in the config.
        order = tuple(sorted((d for d, _ in candidates), key=current.__getitem__, reverse=True))
        current[order[0]] -= total
        return Pick(order=order, weights=dict(candidates), total=total)

    def settle(self, pick: Pick, admitted: str | None, refused: Iterable[str]) -> None:
        """Redo the step without `refused`, charging `admitted` (None: nothing was)."""
        refused = tuple(refused)
        first = pick.order[0]
        if admitted == first and not refused:
            return
        current = self._current
        current[first] += pick.total
        total = pick.total
        for deployment_id in refused:
            weight = pick.weights[deployment_id]
            current[deployment_id] -= weight
            total -= weight
        if admitted is not None:
            current[admitted] -= total

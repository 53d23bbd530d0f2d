"""Fault injection for the stand-ins: what goes wrong with each request, decided reproducibly.

A `Fault` says what happens to one generation request: delays (before the response, before the
first token, between tokens), an error status, a connection reset, or a stream cut or stalled
after some tokens. A `FaultProfile` describes a deployment statistically (base latency with a
heavy tail, error rates by status, reset/cut/stall probabilities, token pacing) and may begin with
a `script`: faults that the next requests get one by one, in order, before the statistics apply.
Scripts are what most tests want ("the next two requests get 503, then normal"); a scripted
fault is complete in itself, it does not inherit the profile's latency.

`FaultInjector` turns a profile into one `Fault` per request. Its draws come from
``random.Random(profile.seed)`` and every drawn request consumes the same five draws whatever the
probabilities are, so a seed gives the same sequence of decisions run after run.

Faults apply to generation requests (chat completions, messages) once they are authenticated and
valid; model listings and the admin API are never disturbed. Both profile and fault convert
to and from JSON objects with the field names below (the admin API and the CLI use that form).
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Final

__all__ = ["NO_FAULT", "Fault", "FaultInjector", "FaultProfile"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """What happens to one request. At most one of status, reset, cut and stall is set.

    latency_ms          delay before the response starts (before any header)
    first_token_ms      streams: delay between the headers and the first content delta;
                        JSON: part of the generation time waited before the body
    inter_token_ms      streams: delay between content deltas; JSON: part of the generation time
    status              answer with this error status (provider's error JSON) instead of a reply
    retry_after_s       ``Retry-After`` header on that error response
    reset               close the TCP connection with a RST, without any response
    cut_after_tokens    streams: send this many content deltas, then close the connection with no
                        terminating event; JSON: headers and half the body, then close
    stall_after_tokens  like cut, but hold the connection open, silent, until the client leaves
    tail                the latency came from the profile's heavy tail (reported as "tail")
    """

    latency_ms: float = 0.0
    first_token_ms: float = 0.0
    inter_token_ms: float = 0.0
    status: int | None = None
    retry_after_s: float | None = None
    reset: bool = False
    cut_after_tokens: int | None = None
    stall_after_tokens: int | None = None
    tail: bool = False

    def __post_init__(self) -> None:
        for name in ("latency_ms", "first_token_ms", "inter_token_ms"):
            _check_non_negative(name, getattr(self, name))
        if self.status is not None and not 400 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP error status (400-599), got {self.status}")
        if self.retry_after_s is not None:
            _check_non_negative("retry_after_s", self.retry_after_s)
        for name in ("cut_after_tokens", "stall_after_tokens"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        outcomes = (
            self.status is not None,
            self.reset,
            self.cut_after_tokens is not None,
            self.stall_after_tokens is not None,
        )
        if sum(outcomes) > 1:
            raise ValueError("a fault has at most one of status, reset, cut and stall")

    @classmethod
    def error(
        cls, status: int, *, retry_after_s: float | None = None, latency_ms: float = 0.0
    ) -> Fault:
        """Answer with `status` and the provider's error body."""
        return cls(status=status, retry_after_s=retry_after_s, latency_ms=latency_ms)

    @classmethod
    def rate_limited(cls, retry_after_s: float = 1.0) -> Fault:
        """Answer 429 with ``Retry-After: retry_after_s``."""
        return cls(status=429, retry_after_s=retry_after_s)

    @classmethod
    def connection_reset(cls, *, latency_ms: float = 0.0) -> Fault:
        """Reset the connection without answering."""
        return cls(reset=True, latency_ms=latency_ms)

    @classmethod
    def cut(cls, after_tokens: int, *, inter_token_ms: float = 0.0) -> Fault:
        """Stop mid-answer after `after_tokens` content deltas and close the connection."""
        return cls(cut_after_tokens=after_tokens, inter_token_ms=inter_token_ms)

    @classmethod
    def stall(cls, after_tokens: int) -> Fault:
        """Go silent after `after_tokens` content deltas, keeping the connection open."""
        return cls(stall_after_tokens=after_tokens)

    @classmethod
    def delay(
        cls, latency_ms: float, *, first_token_ms: float = 0.0, inter_token_ms: float = 0.0
    ) -> Fault:
        """Answer normally, slowly."""
        return cls(
            latency_ms=latency_ms, first_token_ms=first_token_ms, inter_token_ms=inter_token_ms
        )

    @property
    def name(self) -> str | None:
        """How stats report this fault: error_<status>, reset, cut, stall, tail, or None."""
        if self.status is not None:
            return f"error_{self.status}"
        if self.reset:
            return "reset"
        if self.cut_after_tokens is not None:
            return "cut"
        if self.stall_after_tokens is not None:
            return "stall"
        if self.tail:
            return "tail"
        return None

    def to_json(self) -> dict[str, Any]:
        """The non-default fields as a JSON object."""
        default = NO_FAULT
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        }

    @classmethod
    def from_json(cls, data: object) -> Fault:
        """A fault from a JSON object with `Fault`'s field names (all optional)."""
        obj = _object("fault", data, allowed={f.name for f in fields(cls)})
        return cls(
            latency_ms=_number(obj, "latency_ms", 0.0),
            first_token_ms=_number(obj, "first_token_ms", 0.0),
            inter_token_ms=_number(obj, "inter_token_ms", 0.0),
            status=_optional_int(obj, "status"),
            retry_after_s=_optional_number(obj, "retry_after_s"),
            reset=_bool(obj, "reset", False),
            cut_after_tokens=_optional_int(obj, "cut_after_tokens"),
            stall_after_tokens=_optional_int(obj, "stall_after_tokens"),
            tail=_bool(obj, "tail", False),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultProfile:
    """How a stand-in deployment misbehaves, statistically, after an optional script.

    seed                 seeds the draws: the same seed gives the same decisions
    latency_ms           delay before every response
    tail_probability     with this probability a request's latency is multiplied by tail_factor
    tail_factor          e.g. 0.05 and 20: 5% of calls take 20 times the median
    first_token_ms       delay before the first content delta of every reply
    inter_token_ms       delay between content deltas of every reply
    error_rates          {status: probability}, e.g. {503: 0.02, 429: 0.01}; the sum is <= 1
    retry_after_s        ``Retry-After`` sent with drawn 429 responses (None: no header)
    reset_probability    probability of a connection reset without a response
    cut_probability      probability of a reply cut after cut_after_tokens deltas
    stall_probability    probability of a reply stalled after stall_after_tokens deltas
    script               faults for the next requests, in order, before the draws start
    """

    seed: int = 0
    latency_ms: float = 0.0
    tail_probability: float = 0.0
    tail_factor: float = 20.0
    first_token_ms: float = 0.0
    inter_token_ms: float = 0.0
    error_rates: Mapping[int, float] = field(default_factory=dict)
    retry_after_s: float | None = 1.0
    reset_probability: float = 0.0
    cut_probability: float = 0.0
    cut_after_tokens: int = 3
    stall_probability: float = 0.0
    stall_after_tokens: int = 3
    script: tuple[Fault, ...] = ()

    def __post_init__(self) -> None:
        for name in ("latency_ms", "first_token_ms", "inter_token_ms"):
            _check_non_negative(name, getattr(self, name))
        for name in ("tail_probability", "reset_probability", "cut_probability"):
            _check_probability(name, getattr(self, name))
        _check_probability("stall_probability", self.stall_probability)
        if not self.tail_factor >= 1.0:
            raise ValueError(f"tail_factor must be >= 1, got {self.tail_factor}")
        if self.retry_after_s is not None:
            _check_non_negative("retry_after_s", self.retry_after_s)
        for name in ("cut_after_tokens", "stall_after_tokens"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for status, rate in self.error_rates.items():
            if not 400 <= status <= 599:
                raise ValueError(f"error_rates: {status} is not an HTTP error status (400-599)")
            _check_probability(f"error_rates[{status}]", rate)
        if sum(self.error_rates.values()) > 1.0 + 1e-9:
            raise ValueError("error_rates: the probabilities add up to more than 1")
        # Sorted, copied and read-only: the cumulative walk in FaultInjector must not depend on
        # the caller's insertion order, and nobody may change a frozen profile's rates.
        rates = MappingProxyType(dict(sorted(self.error_rates.items())))
        object.__setattr__(self, "error_rates", rates)
        object.__setattr__(self, "script", tuple(self.script))

    @property
    def is_quiet(self) -> bool:
        """True when nothing is drawn: every request gets the same, fault-free timing."""
        return not (
            self.tail_probability
            or self.error_rates
            or self.reset_probability
            or self.cut_probability
            or self.stall_probability
        )

    def to_json(self) -> dict[str, Any]:
        """The profile as a JSON object (statuses as string keys, as JSON requires)."""
        data: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        data["error_rates"] = {str(status): rate for status, rate in self.error_rates.items()}
        data["script"] = [fault.to_json() for fault in self.script]
        return data

    @classmethod
    def from_json(cls, data: object) -> FaultProfile:
        """A profile from a JSON object with `FaultProfile`'s field names (all optional)."""
        obj = _object("fault profile", data, allowed={f.name for f in fields(cls)})
        rates = _object("error_rates", obj.get("error_rates", {}), allowed=None)
        script = obj.get("script", [])
        if not isinstance(script, list):
            raise ValueError("script must be a list of faults")
        return cls(
            seed=_int(obj, "seed", 0),
            latency_ms=_number(obj, "latency_ms", 0.0),
            tail_probability=_number(obj, "tail_probability", 0.0),
            tail_factor=_number(obj, "tail_factor", 20.0),
            first_token_ms=_number(obj, "first_token_ms", 0.0),
            inter_token_ms=_number(obj, "inter_token_ms", 0.0),
            error_rates={_status_key(key): _number(rates, key, 0.0) for key in rates},
            retry_after_s=_optional_number(obj, "retry_after_s") if "retry_after_s" in obj else 1.0,
            reset_probability=_number(obj, "reset_probability", 0.0),
            cut_probability=_number(obj, "cut_probability", 0.0),
            cut_after_tokens=_int(obj, "cut_after_tokens", 3),
            stall_probability=_number(obj, "stall_probability", 0.0),
            stall_after_tokens=_int(obj, "stall_after_tokens", 3),
            script=tuple(Fault.from_json(item) for item in script),
        )


class FaultInjector:
    """Decides each request's `Fault` from a profile: its script first, then seeded draws."""

    def __init__(self, profile: FaultProfile) -> None:
        self._profile = profile
        self._random = random.Random(profile.seed)
        self._script: deque[Fault] = deque(profile.script)
        self._quiet = profile.is_quiet
        # The common case allocates nothing per request.
        self._normal = Fault(
            latency_ms=profile.latency_ms,
            first_token_ms=profile.first_token_ms,
            inter_token_ms=profile.inter_token_ms,
        )

    @property
    def profile(self) -> FaultProfile:
        return self._profile

    @property
    def pending(self) -> int:
        """How many scripted faults are still waiting for a request."""
        return len(self._script)

    def push(self, *faults: Fault) -> None:
        """Queue `faults` for the next requests, after any already scripted."""
        self._script.extend(faults)

    def next_fault(self) -> Fault:
        """The fault for the next request; consumes one scripted fault or one set of draws."""
        if self._script:
            return self._script.popleft()
        if self._quiet:
            return self._normal
        return self._draw()

    def _draw(self) -> Fault:
        profile = self._profile
        draw = self._random.random
        # Always all five, in this order: a seed then fixes request i's decisions whatever the
        # probabilities, so changing one rate does not reshuffle every other decision.
        tail_u, error_u, reset_u, cut_u, stall_u = draw(), draw(), draw(), draw(), draw()
        tail = tail_u < profile.tail_probability
        latency_ms = profile.latency_ms * profile.tail_factor if tail else profile.latency_ms
        timing: dict[str, Any] = {
            "latency_ms": latency_ms,
            "first_token_ms": profile.first_token_ms,
            "inter_token_ms": profile.inter_token_ms,
            "tail": tail,
        }
        if reset_u < profile.reset_probability:
            return Fault(reset=True, **timing)
        status = _pick_status(profile.error_rates, error_u)
        if status is not None:
            retry_after = profile.retry_after_s if status == 429 else None
            return Fault(status=status, retry_after_s=retry_after, **timing)
        if cut_u < profile.cut_probability:
            return Fault(cut_after_tokens=profile.cut_after_tokens, **timing)
        if stall_u < profile.stall_probability:
            return Fault(stall_after_tokens=profile.stall_after_tokens, **timing)
        return Fault(**timing) if tail else self._normal


def _pick_status(rates: Mapping[int, float], u: float) -> int | None:
    cumulative = 0.0
    for status, rate in rates.items():
        cumulative += rate
        if u < cumulative:
            return status
    return None


def _check_non_negative(name: str, value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability between 0 and 1, got {value}")


def _object(what: str, data: object, *, allowed: set[str] | None) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError(f"{what} must be a JSON object")
    if allowed is not None and (unknown := sorted(set(data) - allowed)):
        raise ValueError(f"{what}: unknown field(s) {', '.join(unknown)}")
    return data


def _number(obj: Mapping[str, Any], key: str, default: float) -> float:
    value = obj.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key} must be a number")
    return float(value)


def _optional_number(obj: Mapping[str, Any], key: str) -> float | None:
    return None if obj.get(key) is None else _number(obj, key, 0.0)


def _int(obj: Mapping[str, Any], key: str, default: int) -> int:
    value = obj.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key} must be an integer")
    return value


def _optional_int(obj: Mapping[str, Any], key: str) -> int | None:
    return None if obj.get(key) is None else _int(obj, key, 0)


def _bool(obj: Mapping[str, Any], key: str, default: bool) -> bool:
    value = obj.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false")
    return value


def _status_key(key: str) -> int:
    try:
        return int(key)
    except ValueError:
        raise ValueError(f"error_rates: {key!r} is not an HTTP status") from None


# Defined last: constructing a Fault runs the validation helpers above.
NO_FAULT: Final = Fault()

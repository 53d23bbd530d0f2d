"""Deterministic replies for the stand-ins: what the fake model says and how it is tokenized.

A reply is a pure function of the request and the server's `ReplyPolicy`, so a test can predict
every byte. By default the text is ``"Echo: <last user message>"``; a canned reply replaces the
echo; ``filler_tokens`` words of filler are appended to either (benchmarks use them to get long
streams).

"Tokens" are whitespace-separated words. Each one is emitted together with the whitespace in front
of it (``["Echo:", " hello", " world"]``), so streamed deltas concatenate to exactly the
non-streamed text, and usage is easy to predict: a text of N words counts N tokens
(`count_tokens`), prompts included.

`max_tokens` keeps the first N tokens (finish reason `MAX_TOKENS`). Stop sequences are searched in
the full text, as the real APIs do: the text ends just before the earliest match (finish reason
`STOP_SEQUENCE`) and trailing whitespace before it is dropped with the last token.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

__all__ = ["FinishReason", "Reply", "ReplyPolicy", "count_tokens", "generate_reply"]

# A token is a run of non-space characters with the whitespace that precedes it.
_TOKEN: Final = re.compile(r"\s*\S+")
_FILLER_WORDS: Final = (
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
)


def count_tokens(text: str) -> int:
    """The stand-ins' token count of `text`: its number of whitespace-separated words."""
    return len(text.split())


class FinishReason(enum.Enum):
    """Why a reply ended, in provider-neutral terms (each API names them its own way)."""

    END = "end"
    MAX_TOKENS = "max_tokens"
    STOP_SEQUENCE = "stop_sequence"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplyPolicy:
    """How a stand-in builds its replies.

    canned         reply with this text instead of ``"Echo: <last user message>"``
    filler_tokens  append this many filler words (``" lorem ipsum dolor ..."``)
    """

    canned: str | None = None
    filler_tokens: int = 0
    # Built once per policy: benchmarks ask for hundreds of filler words on every request.
    _filler: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.filler_tokens < 0:
            raise ValueError(f"filler_tokens must be >= 0, got {self.filler_tokens}")
        words = (_FILLER_WORDS[i % len(_FILLER_WORDS)] for i in range(self.filler_tokens))
        object.__setattr__(self, "_filler", "".join(f" {word}" for word in words))

    def text_for(self, prompt: str) -> str:
        """The full reply to `prompt` (the last user message), before any limit applies."""
        head = self.canned if self.canned is not None else f"Echo: {prompt}"
        return head + self._filler


@dataclass(frozen=True, slots=True)
class Reply:
    """A generated reply: its tokens, why it ended and, if a stop sequence did it, which one."""

    tokens: tuple[str, ...]
    finish: FinishReason
    stop_sequence: str | None = None

    @property
    def text(self) -> str:
        return "".join(self.tokens)


def generate_reply(
    policy: ReplyPolicy,
    prompt: str,
    *,
    max_tokens: int | None = None,
    stop: Sequence[str] = (),
) -> Reply:
    """The reply to `prompt` under `policy`, with `max_tokens` and `stop` applied as the real
    APIs apply them."""
    text = policy.text_for(prompt)
    matched: str | None = None
    cut_at = len(text)
    for sequence in stop:
        index = text.find(sequence) if sequence else -1
        if 0 <= index < cut_at:
            cut_at, matched = index, sequence
    tokens = tuple(_TOKEN.findall(text, 0, cut_at))
    if max_tokens is not None and len(tokens) > max_tokens:
        return Reply(tokens[:max_tokens], FinishReason.MAX_TOKENS)
    if matched is not None:
        return Reply(tokens, FinishReason.STOP_SEQUENCE, matched)
    return Reply(tokens, FinishReason.END)

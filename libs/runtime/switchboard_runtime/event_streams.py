"""The JetStream streams of Switchboard: which service owns each and which subjects it holds.

A stream is declared by the service that publishes to it; consumers in other services name
the same stream and subjects from here, so the two sides cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StreamSpec:
    """A JetStream stream: its name and the subjects it captures."""

    name: str
    subjects: tuple[str, ...]
    #: How long events are kept; consumers that fall further behind lose events.
    max_age_seconds: float = 7 * 24 * 3600.0

    def subject(self, event: str, key: str | None = None) -> str:
        """The subject of `event` (e.g. "message_created"), optionally keyed (a conversation id)."""
        prefix = self.subjects[0].removesuffix(".>")
        return f"{prefix}.{event}" if key is None else f"{prefix}.{event}.{key}"


#: User lifecycle events (switchboard.identity.v1 events.proto).
IDENTITY = StreamSpec(name="IDENTITY", subjects=("identity.v1.>",))
#: Messages, statuses and conversations, written through the conversation outbox.
CONVERSATION = StreamSpec(name="CONVERSATION", subjects=("conversation.v1.>",))
#: Inbound platform messages and delivery updates.
CONNECTORS = StreamSpec(name="CONNECTORS", subjects=("connectors.v1.>",))

#: Core-NATS (not persisted) subject prefix for live reply deltas, outside every stream.
LIVE_REPLY_DELTAS = "live.conversation.v1.reply_delta"

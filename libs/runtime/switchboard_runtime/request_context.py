"""Per-request context variables filled by the server interceptors and read by logs and clients.

Every gRPC call runs in its own asyncio task, so a value set here is visible to the handler
and everything it awaits, and disappears with the task; nothing needs resetting.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from typing import Final

#: Metadata key carrying the request id between services and back to the caller.
REQUEST_ID_HEADER: Final = "x-request-id"

#: The id of the request being served, echoed to the caller and stamped on every log line.
request_id_var: ContextVar[str | None] = ContextVar("switchboard_request_id", default=None)

#: Absolute deadline of the inbound call on the `time.monotonic()` clock, if the caller set one.
deadline_var: ContextVar[float | None] = ContextVar("switchboard_deadline", default=None)


def remaining_time() -> float | None:
    """Seconds left before the inbound call's deadline, or None when it has none."""
    deadline = deadline_var.get()
    if deadline is None:
        return None
    return deadline - time.monotonic()

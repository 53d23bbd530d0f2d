"""Errors of the conversation service's use cases.

ConversationError
├── NotFoundError            no such bot / conversation / message in the caller's tenant
├── ForbiddenError           the caller may not read or post in this conversation
├── AlreadyExistsError       an open channel conversation exists for that contact
├── FailedPreconditionError  the state forbids it: no bot, not a group, group size
│   └── ConversationClosedError   nothing more can be posted to a closed conversation
└── InvalidFieldError        a request field breaks a rule protovalidate cannot express
ReplyModelError              the LLM router could not produce a reply (adapter → use case)
"""

from __future__ import annotations


class ConversationError(Exception):
    """Base of the errors the servicer maps to a gRPC status."""


class NotFoundError(ConversationError):
    pass


class ForbiddenError(ConversationError):
    pass


class AlreadyExistsError(ConversationError):
    pass


class FailedPreconditionError(ConversationError):
    pass


class ConversationClosedError(FailedPreconditionError):
    def __init__(self) -> None:
        super().__init__("the conversation is closed")


class InvalidFieldError(ConversationError):
    def __init__(self, field: str, description: str) -> None:
        super().__init__(f"{field}: {description}")
        self.field = field
        self.description = description


class ReplyModelError(Exception):
    """The reply could not be generated; `reason` is short, secret-free and stored."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

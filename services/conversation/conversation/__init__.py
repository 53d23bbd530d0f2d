"""Conversation: bots, conversations and messages, bot replies, live watch, the event outbox."""

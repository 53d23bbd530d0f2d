"""Connectors: messaging-platform channels, verified webhooks and tracked deliveries."""

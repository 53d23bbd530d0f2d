"""Identity: tenants, users and roles, passwords, signed tokens, refresh tokens, API keys."""

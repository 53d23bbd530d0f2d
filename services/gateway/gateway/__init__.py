"""Gateway: the public door — authentication, authorization, tenancy, validation, rate limits."""

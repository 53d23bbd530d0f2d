"""LLM router: weighted, breaker-guarded, retrying and hedging routing over LLM providers."""

"""Provider adapters: each turns a `CompletionRequest` into one provider's API call and maps
that SDK's exceptions to the router's `ProviderError` tree in one place."""

from __future__ import annotations

from llm_router.config import DeploymentConfig
from llm_router.providers.base import Provider


def build_provider(deployment: DeploymentConfig) -> Provider:
    """The real client for `deployment` (one per deployment, reused by every call)."""
    if deployment.provider == "openai":
        from llm_router.providers.openai_provider import OpenAIProvider

        return OpenAIProvider(deployment)
    if deployment.provider == "anthropic":
        from llm_router.providers.anthropic_provider import AnthropicProvider

        return AnthropicProvider(deployment)
    from llm_router.providers.mock_provider import MockProvider

    return MockProvider(deployment)


__all__ = ["Provider", "build_provider"]

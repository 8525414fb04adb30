"""What the agent and notebook benchmarks share: the key they send and a registry for the scripted server."""

from __future__ import annotations

import httpx

from codetether_magics.providers.openai import OpenAIProvider
from codetether_magics.providers.registry import ProviderRegistry

KEY = "sk-bench-not-secret"


def openai_registry(base_url: str, client: httpx.AsyncClient) -> ProviderRegistry:
    """The real OpenAI provider at ``base_url`` (the scripted loopback server), default model "bench"."""
    registry = ProviderRegistry(environ={})
    registry.register(OpenAIProvider("openai", KEY, base_url, http_client=client), default_model="bench")
    return registry

"""Environment variables that would point a test or a recording at a real provider, a real
Vault, or a notebook/session choice made outside the test: cleared before either runs."""

from __future__ import annotations

__all__ = ["REAL_WORLD_VARS"]

REAL_WORLD_VARS = (
    "OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL",
    "OPENROUTER_API_KEY", "GROQ_API_KEY", "DEEPSEEK_API_KEY", "MISTRAL_API_KEY", "OLLAMA_HOST",
    "VAULT_ADDR", "VAULT_TOKEN", "VAULT_ROLE", "VAULT_MOUNT", "VAULT_SECRETS_PATH",
    "VAULT_AUTH_MOUNT", "VAULT_K8S_SA_JWT_PATH",
    "CODETETHER_MODEL", "CODETETHER_REPLAY", "CODETETHER_NOTEBOOK", "JPY_SESSION_NAME", "CODETETHER_CONTEXT_TOKENS",
)

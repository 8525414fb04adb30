"""Every test runs with its own data dir and with no real provider credentials in reach."""

from __future__ import annotations

import pytest

# Variables that would point a test at a real provider or a real Vault.
_REAL_WORLD_VARS = (
    "OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL",
    "OPENROUTER_API_KEY", "GROQ_API_KEY", "DEEPSEEK_API_KEY", "MISTRAL_API_KEY", "OLLAMA_HOST",
    "VAULT_ADDR", "VAULT_TOKEN", "VAULT_ROLE", "VAULT_MOUNT", "VAULT_SECRETS_PATH",
    "CODETETHER_MODEL", "CODETETHER_REPLAY", "CODETETHER_NOTEBOOK", "JPY_SESSION_NAME",
)


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path, monkeypatch):
    for name in _REAL_WORLD_VARS:
        monkeypatch.delenv(name, raising=False)
    data_dir = tmp_path / "codetether-data"
    monkeypatch.setenv("CODETETHER_DATA_DIR", str(data_dir))
    monkeypatch.setenv("CODETETHER_CONFIG", str(tmp_path / "no-config.toml"))
    return data_dir

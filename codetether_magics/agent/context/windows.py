"""How many tokens each model's context window holds, and how a user overrides it.

Model ids are matched on a folded form (lower case, no "-", "_" or spaces, after the last "/"
so "openrouter/openai/gpt-5" and "meta-llama/llama-3.1-8b-instruct" find their family); the
longest matching prefix wins ("gpt4omini" before "gpt4o" before "gpt4"). Unknown models get
``DEFAULT_WINDOW``. The figures are the providers' published input windows; a server that
runs a model with a smaller one (llama.cpp's ``-c``, Ollama's ``num_ctx``) answers with a
context-length error, which the loop handles by cutting the request further.
"""

from __future__ import annotations

import os
from typing import Mapping

from ...errors import ContextBudgetError

__all__ = ["DEFAULT_WINDOW", "ENV_VAR", "MODEL_WINDOWS", "context_window", "window_override"]

DEFAULT_WINDOW = 128_000
ENV_VAR = "CODETETHER_CONTEXT_TOKENS"

MODEL_WINDOWS: dict[str, int] = {
    # OpenAI
    "gpt-4o": 128_000, "gpt-4o-mini": 128_000, "chatgpt-4o": 128_000, "gpt-4-turbo": 128_000,
    "gpt-4": 8_192, "gpt-3.5-turbo": 16_385,
    "gpt-4.1": 1_047_576, "gpt-4.1-mini": 1_047_576, "gpt-4.1-nano": 1_047_576,
    "o1": 200_000, "o1-mini": 128_000, "o1-pro": 200_000, "o3": 200_000, "o3-mini": 200_000,
    "o3-pro": 200_000, "o4-mini": 200_000,
    "gpt-5": 400_000, "gpt-5-mini": 400_000, "gpt-5-nano": 400_000, "gpt-5-codex": 400_000,
    "gpt-5-chat": 128_000, "codex-mini": 200_000, "gpt-oss": 131_072,
    # Anthropic (3.5 to 4.x: 200k; the 1M window of some 4.x models is an opt-in beta)
    "claude": 200_000, "claude-3-5-sonnet": 200_000, "claude-3-5-haiku": 200_000, "claude-3-7-sonnet": 200_000,
    "claude-sonnet-4": 200_000, "claude-opus-4": 200_000, "claude-haiku-4": 200_000,
    "claude-3-opus": 200_000, "claude-3-haiku": 200_000,
    # Google
    "gemini-2.5-pro": 1_048_576, "gemini-2.5-flash": 1_048_576, "gemini-2.5-flash-lite": 1_048_576,
    "gemini-2.0-flash": 1_048_576, "gemini-1.5-pro": 2_097_152, "gemini-1.5-flash": 1_048_576,
    # Meta Llama (as served by Groq, OpenRouter, Ollama, vLLM)
    "llama3": 8_192, "llama-3.1": 131_072, "llama3.1": 131_072, "llama-3.2": 131_072, "llama3.2": 131_072,
    "llama-3.3": 131_072, "llama3.3": 131_072, "llama-4": 131_072, "llama4": 131_072,
    # Qwen
    "qwen2.5": 32_768, "qwen-2.5": 32_768, "qwen2.5-coder": 32_768, "qwen3": 40_960, "qwen-3": 40_960,
    "qwen3-coder": 262_144, "qwq": 131_072, "qwen-max": 32_768, "qwen-plus": 131_072,
    # Mistral
    "mistral": 32_768, "mistral-large": 131_072, "mistral-medium": 131_072, "mistral-small": 131_072,
    "mistral-nemo": 131_072, "ministral": 131_072, "mixtral": 32_768, "codestral": 256_000,
    "devstral": 131_072, "magistral": 40_960, "pixtral": 131_072,
    # DeepSeek
    "deepseek-chat": 131_072, "deepseek-reasoner": 131_072, "deepseek-r1": 131_072, "deepseek-v3": 131_072,
    "deepseek-coder": 131_072,
    # others often met through OpenRouter and Groq
    "kimi-k2": 131_072, "glm-4.5": 131_072, "glm-4.6": 204_800, "grok-3": 131_072, "grok-4": 256_000,
}


def _fold(model: str) -> str:
    name = model.rsplit("/", 1)[-1].lower()
    return "".join(c for c in name if c not in "-_ ")


_FOLDED = sorted(((_fold(k), v) for k, v in MODEL_WINDOWS.items()), key=lambda kv: -len(kv[0]))


def table_window(model: str) -> int:
    """The table's window for ``model`` (a provider's id or "provider/model"), else ``DEFAULT_WINDOW``."""
    folded = _fold(model or "")
    for prefix, window in _FOLDED:
        if folded.startswith(prefix):
            return window
    return DEFAULT_WINDOW


def window_override(value: int | str | None, source: str) -> int | None:
    """A user's window as a whole number of tokens (None when not set); a clear error otherwise."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        tokens = int(str(value).strip().replace("_", "").replace(",", ""))
    except ValueError:
        raise ContextBudgetError(f"{source} must be a whole number of tokens (such as 128000), got {value!r}.") \
            from None
    if tokens < 1:
        raise ContextBudgetError(f"{source} must be at least 1 token, got {tokens}.")
    return tokens


def context_window(model: str, override: int | None = None, environ: Mapping[str, str] | None = None) -> int:
    """The window to budget for: ``override`` (``CodeTether.context_tokens``), else
    ``CODETETHER_CONTEXT_TOKENS``, else the table."""
    chosen = window_override(override, "CodeTether.context_tokens")
    if chosen is not None:
        return chosen
    environ = os.environ if environ is None else environ
    chosen = window_override(environ.get(ENV_VAR), ENV_VAR)
    return chosen if chosen is not None else table_window(model)

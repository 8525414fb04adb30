"""Which provider errors say "the request is longer than the context window".

Each server says it its own way; the phrases below come from real error bodies (OpenAI,
Anthropic, llama.cpp, vLLM, OpenRouter, DeepSeek, Groq, Gemini's and Mistral's APIs). Only
client errors count (400, 413, 422): a 429 "Request too large ... tokens per min" is a rate
limit, not a window, and must stay retryable.
"""

from __future__ import annotations

import re

from ..errors import ContextLengthError, ProviderHTTPError

__all__ = ["http_error", "is_context_length"]

_STATUSES = (400, 413, 422)
_CODES = ("context_length_exceeded", "exceed_context_size_error", "request_too_large")
_PHRASES = re.compile(
    r"maximum context length"                           # OpenAI, vLLM, OpenRouter, DeepSeek, Groq
    r"|prompt is too long"                              # Anthropic
    r"|exceed(s|ed)? (the )?context (limit|window)"     # Anthropic (input + max_tokens), generic
    r"|exceeds the available context size"              # llama.cpp server
    r"|context (length|window) (exceeded|is exceeded)"  # generic proxies
    r"|exceeds the maximum number of tokens allowed"    # Gemini
    r"|too large for model with \d+ maximum context",   # Mistral
    re.IGNORECASE,
)


def is_context_length(status: int, body: str) -> bool:
    """Whether an error answer (status and raw body text, or just the message) is a context-length error."""
    if status not in _STATUSES:
        return False
    lowered = body.lower()
    return any(code in lowered for code in _CODES) or bool(_PHRASES.search(body))


def http_error(status: int, message: str, *, provider: str, retry_after: float | None = None,
               body: str = "") -> ProviderHTTPError:
    """The error for an error answer: ``ContextLengthError`` when it is about the window."""
    kind = ContextLengthError if is_context_length(status, body or message) else ProviderHTTPError
    return kind(status, message, provider=provider, retry_after=retry_after)

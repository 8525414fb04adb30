"""What model calls cost: the one price table, and the estimate a budget check uses.

Prices are US dollars per million tokens, as the providers published them on ``PRICES_AS_OF``
(list prices, standard tier, prompts under any long-context surcharge). They change: a model
that is not in the table has no known cost (``None``), never a guessed one. Local servers
(Ollama) cost nothing.

How usage maps to money: ``prompt_tokens`` is the whole prompt in every protocol (cached
parts included), so the uncached input is ``prompt - cache_read - cache_write``; cache reads
and writes have their own prices where the provider charges them differently.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Mapping

from ..errors import ProviderError

__all__ = ["COST_LIMIT_VARIABLE", "PRICES", "PRICES_AS_OF", "Price", "cost_limit_from_environ", "cost_of",
           "describe_cost", "estimate_call_cost", "estimate_request_tokens", "price_for"]

PRICES_AS_OF = "2025-08-01"
COST_LIMIT_VARIABLE = "CODETETHER_COST_LIMIT_USD"


@dataclass(frozen=True)
class Price:
    input: float  # per million uncached prompt tokens
    output: float  # per million completion tokens (reasoning included)
    cache_read: float | None = None  # None: as input
    cache_write: float | None = None


# Model ids as each provider names them; OpenRouter's "vendor/model" ids map to the vendor's model.
PRICES: dict[str, Price] = {
    "gpt-4o": Price(2.50, 10.00, cache_read=1.25),
    "gpt-4o-mini": Price(0.15, 0.60, cache_read=0.075),
    "gpt-4.1": Price(2.00, 8.00, cache_read=0.50),
    "gpt-4.1-mini": Price(0.40, 1.60, cache_read=0.10),
    "gpt-5": Price(1.25, 10.00, cache_read=0.125),
    "gpt-5-mini": Price(0.25, 2.00, cache_read=0.025),
    "gpt-5-codex": Price(1.25, 10.00, cache_read=0.125),
    "o3": Price(2.00, 8.00, cache_read=0.50),
    "o4-mini": Price(1.10, 4.40, cache_read=0.275),
    "claude-sonnet-4-20250514": Price(3.00, 15.00, cache_read=0.30, cache_write=3.75),
    "claude-opus-4-1-20250805": Price(15.00, 75.00, cache_read=1.50, cache_write=18.75),
    "claude-3-5-haiku-20241022": Price(0.80, 4.00, cache_read=0.08, cache_write=1.00),
    "gemini-2.5-pro": Price(1.25, 10.00, cache_read=0.31),
    "gemini-2.5-flash": Price(0.30, 2.50, cache_read=0.075),
    "llama-3.3-70b-versatile": Price(0.59, 0.79),
    "deepseek-chat": Price(0.27, 1.10, cache_read=0.07),
    "deepseek-reasoner": Price(0.55, 2.19, cache_read=0.14),
    "mistral-large-latest": Price(2.00, 6.00),
}
_FREE = Price(0.0, 0.0)
_LOCAL_PROVIDERS = frozenset({"ollama"})


def price_for(provider: str, model: str) -> Price | None:
    """The price of ``provider``'s ``model``, None when unknown."""
    if provider in _LOCAL_PROVIDERS:
        return _FREE
    if model in PRICES:
        return PRICES[model]
    _, slash, local = model.partition("/")  # "openai/gpt-4o" on OpenRouter
    if slash and local in PRICES:
        return PRICES[local]
    return None


def cost_of(provider: str, model: str, usage: Any) -> float | None:
    """Dollars for ``usage`` (a ``Usage``: prompt, completion, cache read and write tokens), None when the
    model's price is unknown."""
    price = price_for(provider, model)
    if price is None:
        return None
    read, write = usage.cache_read_tokens or 0, usage.cache_write_tokens or 0
    uncached = max(0, (usage.prompt_tokens or 0) - read - write)
    dollars = (uncached * price.input + (usage.completion_tokens or 0) * price.output
               + read * (price.input if price.cache_read is None else price.cache_read)
               + write * (price.input if price.cache_write is None else price.cache_write))
    return round(dollars / 1_000_000, 6)


def describe_cost(usage: Any, model: str | None) -> str:
    """One line for a session's usage priced at its model ("provider/model"): what ``%codetether usage``
    and a footer can show."""
    cached = ""
    if usage.cache_read_tokens or usage.cache_write_tokens:
        cached = f" (cache: {usage.cache_read_tokens} read, {usage.cache_write_tokens} written)"
    provider, _, local = (model or "").partition("/")
    cost = cost_of(provider, local, usage) if local else None
    if cost is None:
        return f"cost: unknown (no price for {model or 'an unchosen model'} in the table){cached}"
    return f"cost: ${cost:.4f} at {model} list prices of {PRICES_AS_OF}{cached}"


def estimate_request_tokens(request: Any) -> int:
    """Prompt tokens of ``request`` (a ``ModelRequest``), estimated from its size: about 4 characters
    a token for text, a flat 1,000 tokens an image (what a 1-megapixel image costs in both APIs)."""
    chars, images = len(request.system or ""), 0
    for message in request.messages:
        for part in message.content:
            if getattr(part, "type", "") == "image":
                images += 1
            else:
                chars += len(json.dumps(part.model_dump(exclude={"type"}), ensure_ascii=False))
    chars += sum(len(json.dumps(t.parameters)) + len(t.description) + len(t.name) for t in request.tools)
    return chars // 4 + 1000 * images


def estimate_call_cost(provider: str, request: Any) -> float | None:
    """Dollars the prompt of ``request`` will cost at least (the answer adds to it), None when unknown."""
    price = price_for(provider, request.model)
    if price is None:
        return None
    return estimate_request_tokens(request) * price.input / 1_000_000


def cost_limit_from_environ(environ: Mapping[str, str] | None = None) -> float | None:
    """``CODETETHER_COST_LIMIT_USD`` as dollars, None when unset; anything else than a number >= 0 is an error."""
    environ = os.environ if environ is None else environ
    raw = environ.get(COST_LIMIT_VARIABLE, "").strip().lstrip("$")
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise ProviderError(f"{COST_LIMIT_VARIABLE} must be an amount of US dollars such as 0.50, got {raw!r}")
    return value

"""The providers this package knows by name, and how a credential record becomes a provider.

A record is what Vault, the environment or the config file says about one provider:
``{api_key, base_url, organization, headers, protocol, default_model}``. Known names
(openai, anthropic, google, openrouter, groq, deepseek, mistral, ollama) bring their wire
protocol, base URL and default model; any other name is an OpenAI-compatible server
that needs a ``base_url`` (or ``protocol = "anthropic"`` for an Anthropic-compatible one).

Every credential is checked as it is read (``redaction.check_credential``): one with a
control character is refused with an error naming where it came from, and every accepted
one is remembered as a secret to scrub from all output.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

import httpx

from ..redaction import check_credential, scrubbing_logger
from . import anthropic, openai
from .anthropic import AnthropicProvider
from .base import Provider
from .openai import OpenAIProvider
from .openai_responses import api_choice

__all__ = ["DEFAULT_ORDER", "KNOWN_PROVIDERS", "KnownProvider", "chosen_model", "env_records", "make_provider",
           "ollama_base_url"]

log = scrubbing_logger(__name__)


@dataclass(frozen=True)
class KnownProvider:
    protocol: str  # "openai" or "anthropic"
    base_url: str
    default_model: str
    key_variable: str | None  # the environment variable holding its key
    base_url_variable: str | None = None
    other_key_variables: tuple[str, ...] = ()  # read when key_variable is unset (GOOGLE_API_KEY for google)

    @property
    def key_variables(self) -> tuple[str, ...]:
        return ((self.key_variable,) if self.key_variable else ()) + self.other_key_variables


KNOWN_PROVIDERS: dict[str, KnownProvider] = {
    "openai": KnownProvider("openai", openai.DEFAULT_BASE_URL, "gpt-4o", "OPENAI_API_KEY", "OPENAI_BASE_URL"),
    "anthropic": KnownProvider("anthropic", anthropic.DEFAULT_BASE_URL, "claude-sonnet-4-20250514",
                               "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"),
    # Gemini through Google's OpenAI-compatible endpoint (Chat Completions, tools, images, streaming).
    "google": KnownProvider("openai", "https://generativelanguage.googleapis.com/v1beta/openai", "gemini-2.5-pro",
                            "GEMINI_API_KEY", "GEMINI_BASE_URL", ("GOOGLE_API_KEY",)),
    "openrouter": KnownProvider("openai", "https://openrouter.ai/api/v1", "openai/gpt-4o", "OPENROUTER_API_KEY"),
    "groq": KnownProvider("openai", "https://api.groq.com/openai/v1", "llama-3.3-70b-versatile", "GROQ_API_KEY"),
    "deepseek": KnownProvider("openai", "https://api.deepseek.com/v1", "deepseek-chat", "DEEPSEEK_API_KEY"),
    "mistral": KnownProvider("openai", "https://api.mistral.ai/v1", "mistral-large-latest", "MISTRAL_API_KEY"),
    "ollama": KnownProvider("openai", "http://127.0.0.1:11434/v1", "llama3.2", None),
}

# With no model chosen, the first registered of these is the default (docs/design.md, "Providers"; Gemini
# after Anthropic).
DEFAULT_ORDER = ("openai", "anthropic", "google", "openrouter", "groq", "deepseek", "mistral", "ollama")


def ollama_base_url(host: str) -> str:
    """``OLLAMA_HOST`` ("127.0.0.1:11434", "http://gpu-box:11434", ...) as its OpenAI-compatible base URL."""
    host = host.strip().rstrip("/")
    if "://" not in host:
        host = "http://" + host
    if httpx.URL(host).port is None and host.count(":") == 1:
        host += ":11434"  # Ollama's own default port
    return host if host.endswith("/v1") else host + "/v1"


def env_records(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Records from the environment fallback variables, in the default order."""
    records: dict[str, dict[str, Any]] = {}
    for name in DEFAULT_ORDER:
        known = KNOWN_PROVIDERS[name]
        if known.key_variable is None:  # ollama: a host, no key
            if environ.get("OLLAMA_HOST", "").strip():
                records[name] = {"base_url": ollama_base_url(environ["OLLAMA_HOST"])}
            continue
        variable = next((v for v in known.key_variables if environ.get(v, "").strip()), known.key_variable)
        key = check_credential(environ.get(variable, ""), variable)
        base_url = environ.get(known.base_url_variable or "", "").strip() or None
        if key or base_url:  # a base URL alone: a local compatible server that takes no key
            records[name] = {"api_key": key, "base_url": base_url, "_key_hint": variable}
    return records


def make_provider(name: str, record: Mapping[str, Any], *, http_client: httpx.AsyncClient | None = None,
                  source: str = "") -> Provider | None:
    """A provider from ``record``, or None (logged, without the key) when it cannot work."""
    known = KNOWN_PROVIDERS.get(name)
    origin = _origin(name, source)
    api_key = check_credential(_text(record.get("api_key")), f"api_key of {origin}")
    base_url = _text(record.get("base_url")) or (known.base_url if known else None)
    protocol = _text(record.get("protocol")) or (known.protocol if known else "openai")
    where = f" from {source}" if source else ""
    if protocol not in ("openai", "anthropic"):
        log.warning("Skipping provider %r%s: protocol %r is not 'openai' or 'anthropic'", name, where, protocol)
        return None
    if base_url is None:
        log.warning("Skipping provider %r%s: an unknown provider needs a base_url", name, where)
        return None
    if api_key is None and known is not None and known.key_variable is not None and not record.get("base_url"):
        log.warning("Skipping provider %r%s: it has no api_key", name, where)
        return None
    options = {"http_client": http_client, "organization": _text(record.get("organization")),
               "headers": _headers(record.get("headers"), origin),
               "key_hint": _text(record.get("_key_hint")) or f"the api_key of {origin}"}
    cls = AnthropicProvider if protocol == "anthropic" else OpenAIProvider
    provider = cls(name, api_key, base_url, **options)
    if record.get("prompt_caching") in (False, "false", "0") and isinstance(provider, AnthropicProvider):
        provider.prompt_caching = False  # a compatible proxy that refuses cache_control
    if isinstance(provider, OpenAIProvider):
        provider.api = api_choice(_text(record.get("api")), f"api of {origin}")
    return provider


def _origin(name: str, source: str) -> str:
    """Where a record came from, as error messages name it (never its values)."""
    if source == "config file":
        return f"[providers.{name}] in the config file"
    if source == "vault":
        return f"the Vault secret for provider {name!r}"
    return f"provider {name!r}" + (f" from {source}" if source else "")


def chosen_model(record: Mapping[str, Any]) -> str | None:
    """The ``default_model`` a record sets, if any."""
    return _text(record.get("default_model"))


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _headers(value: Any, origin: str) -> dict[str, str]:
    """Extra request headers; every value counts as a credential (checked, and scrubbed from output)."""
    if isinstance(value, str) and value.strip():
        try:
            value = json.loads(value)  # Vault UIs often store maps as JSON text
        except ValueError:
            log.warning("Ignoring the headers of %s: not a JSON object", origin)
            return {}
    if not isinstance(value, Mapping):
        return {}
    headers: dict[str, str] = {}
    for key, item in value.items():
        name = check_credential(str(key), f"a header name of {origin}", secret=False) or ""
        headers[name] = check_credential(str(item), f"header {name!r} of {origin}") or ""
    return headers

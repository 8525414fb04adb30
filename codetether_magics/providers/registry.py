"""``ProviderRegistry``: which model providers are configured, and which one a model string means.

Sources, first one wins for a given provider name:

1. HashiCorp Vault, when ``VAULT_ADDR`` is set (``providers/vault.py``);
2. the environment fallback (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``, ..., ``OLLAMA_HOST``),
   unless ``CODETETHER_DISABLE_ENV_FALLBACK`` is 1/true;
3. ``[providers.<name>]`` tables in the config file (``providers/config_file.py``).

Model strings are ``provider/model``, split at the first ``/``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import httpx

from .._env import env_flag
from ..errors import NoProviderConfiguredError, ProviderError, ProviderNotFoundError
from ..redaction import scrubbing_logger
from .base import Provider
from .config_file import config_path as _default_config_path, read_config_file
from .known import DEFAULT_ORDER, KNOWN_PROVIDERS, chosen_model, env_records, make_provider

__all__ = ["ProviderRegistry"]

log = scrubbing_logger(__name__)

@dataclass
class _Entry:
    provider: Provider
    chosen_model: str | None  # a default_model the user set for this provider
    source: str  # "vault", "environment", "config file" or "registered"

    @property
    def default_model(self) -> str | None:
        known = KNOWN_PROVIDERS.get(self.provider.name)
        return self.chosen_model or (known.default_model if known else None)


class ProviderRegistry:
    """The configured providers, by name. Falsy when none is configured."""

    def __init__(self, *, environ: Mapping[str, str] | None = None, config_path: str | Path | None = None) -> None:
        environ = os.environ if environ is None else environ
        # Only what is needed later is kept: never the environment itself, which holds keys and tokens.
        self._model_override = environ.get("CODETETHER_MODEL", "").strip() or None
        self._config_file = Path(config_path) if config_path is not None else _default_config_path(environ)
        self._entries: dict[str, _Entry] = {}
        self._config_default_model: str | None = None

    # -- construction ----------------------------------------------------------------

    @classmethod
    async def from_vault(cls, *, http_client: httpx.AsyncClient | None = None,
                         environ: Mapping[str, str] | None = None,
                         config_path: str | Path | None = None) -> "ProviderRegistry":
        """Vault (when ``VAULT_ADDR`` is set), then the environment, then the config file.

        Raises ``ProviderAuthError`` when Vault refuses us even after logging in again; an
        unreachable Vault is logged and skipped. Nothing configured is not an error here:
        resolving a model on an empty registry raises ``NoProviderConfiguredError``.
        """
        environ = os.environ if environ is None else environ
        registry = cls(environ=environ, config_path=config_path)
        if environ.get("VAULT_ADDR", "").strip():
            from .vault import load_vault_records  # hvac is only imported when Vault is used

            records = await load_vault_records(environ)
            registry._add_records(records, "vault", http_client)
        registry._add_fallbacks(environ, http_client)
        return registry

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, http_client: httpx.AsyncClient | None = None,
                 config_path: str | Path | None = None) -> "ProviderRegistry":
        """The environment and the config file, without Vault."""
        environ = os.environ if environ is None else environ
        registry = cls(environ=environ, config_path=config_path)
        registry._add_fallbacks(environ, http_client)
        return registry

    def _add_fallbacks(self, environ: Mapping[str, str], http_client: httpx.AsyncClient | None) -> None:
        if not env_flag("CODETETHER_DISABLE_ENV_FALLBACK", environ):
            self._add_records(env_records(environ), "environment", http_client)
        config = read_config_file(self.config_file_path)
        self._add_records(config.providers, "config file", http_client)
        self._config_default_model = config.default_model

    def _add_records(self, records: Mapping[str, Mapping[str, Any]], source: str,
                     http_client: httpx.AsyncClient | None) -> None:
        for name, record in records.items():
            chosen = chosen_model(record)
            if name in self._entries:  # an earlier source won; a later one may still name its default model
                self._entries[name].chosen_model = self._entries[name].chosen_model or chosen
                continue
            provider = make_provider(name, record, http_client=http_client, source=source)
            if provider is not None:
                self._entries[name] = _Entry(provider, chosen, source)
                log.debug("Provider %r configured from %s", name, source)

    @property
    def config_file_path(self) -> Path:
        return self._config_file

    def register(self, provider: Provider, *, default_model: str | None = None) -> None:
        """Add or replace a provider under ``provider.name``."""
        self._entries[provider.name] = _Entry(provider, default_model, "registered")

    # -- lookup ----------------------------------------------------------------------------

    def names(self) -> list[str]:
        return list(self._entries)

    def source_of(self, name: str) -> str:
        """Where a provider came from: "vault", "environment", "config file" or "registered"."""
        return self._entry(name).source

    def get(self, name: str) -> Provider:
        return self._entry(name).provider

    def _entry(self, name: str) -> _Entry:
        try:
            return self._entries[name]
        except KeyError:
            if not self._entries:
                raise NoProviderConfiguredError(self._how_to_configure()) from None
            raise ProviderNotFoundError(
                f"Provider '{name}' not found. Available: {', '.join(sorted(self._entries))}") from None

    def default_model(self) -> str:
        """``CODETETHER_MODEL``, else the config file's ``default_model``, else the first registered of
        openai, anthropic, google, openrouter, groq, deepseek, mistral, ollama (then any other) with its
        default model."""
        chosen = self._model_override or self._config_default_model
        if chosen:
            return chosen
        if not self._entries:
            raise NoProviderConfiguredError(self._how_to_configure())
        ordered = [n for n in DEFAULT_ORDER if n in self._entries] + \
                  [n for n in self._entries if n not in DEFAULT_ORDER]
        for name in ordered:
            if self._entries[name].default_model:
                return f"{name}/{self._entries[name].default_model}"
        raise ProviderError(f"No default model for providers {', '.join(ordered)}: choose one with "
                            f"--model provider/model, CODETETHER_MODEL, or default_model in {self.config_file_path}")

    def resolve_model(self, model: str | None) -> tuple[Provider, str]:
        """The provider and its own model id for ``model`` ("provider/model"; None: the default).

        A bare name is a provider (with its default model) when one is registered under
        it, else a model id for the default provider.
        """
        if not self._entries:
            raise NoProviderConfiguredError(self._how_to_configure())
        model = (model or "").strip() or self.default_model()
        name, slash, local = model.partition("/")
        if not slash:
            if model in self._entries:
                return self._with_default(model)
            name, _, _ = self.default_model().partition("/")
            local = model
        entry = self._entry(name)
        if not local:
            return self._with_default(name)
        return entry.provider, local

    def _with_default(self, name: str) -> tuple[Provider, str]:
        entry = self._entry(name)
        if not entry.default_model:
            raise ProviderError(f"Provider '{name}' has no default model: write '{name}/<model>'")
        return entry.provider, entry.default_model

    def try_resolve_model(self, model: str | None) -> tuple[Provider, str] | None:
        """Like ``resolve_model`` but logs the problem and returns None (for optional sub-call models)."""
        try:
            return self.resolve_model(model)
        except ProviderError as exc:
            log.warning("Could not resolve model %r: %s", model, exc)
            return None

    def __len__(self) -> int:  # also its truth value: falsy when nothing is configured
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __repr__(self) -> str:
        return f"ProviderRegistry({', '.join(f'{n} ({e.source})' for n, e in self._entries.items()) or 'empty'})"

    def _how_to_configure(self) -> str:
        variables = ", ".join(v for k in KNOWN_PROVIDERS.values() for v in k.key_variables)
        return ("No model provider is configured. In a notebook, one line is enough: %env OPENAI_API_KEY=sk-... "
                "(or another of " + variables + "; OPENAI_BASE_URL or ANTHROPIC_BASE_URL for compatible "
                "servers, OLLAMA_HOST for a local Ollama). Or point VAULT_ADDR and VAULT_TOKEN at a Vault holding "
                "secret/codetether/providers/<name>, or add [providers.<name>] with api_key = \"...\" to "
                f"{self.config_file_path}.")

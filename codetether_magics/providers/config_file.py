"""Provider records from the agent's TOML config file.

    # ~/.config/codetether-agent/config.toml  (or $CODETETHER_CONFIG)
    default_model = "anthropic/claude-sonnet-4-20250514"   # optional

    [providers.openai]
    api_key = "sk-..."
    default_model = "gpt-4o-mini"

    [providers.vllm]                                        # any OpenAI-compatible server
    base_url = "http://gpu-box:8000/v1"
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import ProviderError

__all__ = ["ConfigFile", "config_path", "read_config_file"]


@dataclass
class ConfigFile:
    path: Path
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    default_model: str | None = None


def config_path(environ: Mapping[str, str]) -> Path:
    """``$CODETETHER_CONFIG``, else ``$XDG_CONFIG_HOME`` (or ``~/.config``)``/codetether-agent/config.toml``."""
    explicit = environ.get("CODETETHER_CONFIG", "").strip()
    if explicit:
        return Path(explicit).expanduser()
    base = environ.get("XDG_CONFIG_HOME", "").strip() or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "codetether-agent" / "config.toml"


def read_config_file(path: Path) -> ConfigFile:
    """The providers in ``path``; a missing file is an empty config, a broken one a clear error."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return ConfigFile(path)
    except OSError as exc:
        raise ProviderError(f"Cannot read the config file {path}: {exc.strerror or exc}") from None
    data = _parse_toml(raw, path)
    providers = data.get("providers", {})
    if not isinstance(providers, dict) or not all(isinstance(v, dict) for v in providers.values()):
        raise ProviderError(f"In {path}: 'providers' must be tables like [providers.openai] with api_key = \"...\"")
    default_model = data.get("default_model")
    return ConfigFile(path, {str(k): dict(v) for k, v in providers.items()},
                      default_model if isinstance(default_model, str) and default_model.strip() else None)


def _parse_toml(raw: bytes, path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise ProviderError(f"Reading {path} needs Python 3.11+ or the 'tomli' package (pip install tomli)") \
                from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        # The TOML error names a line and column, never the value, so no key can leak here.
        raise ProviderError(f"The config file {path} is not valid TOML: {exc}") from None

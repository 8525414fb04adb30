"""A provider registry read from a config file the test writes, as a user's config.toml would be."""

from __future__ import annotations

from pathlib import Path

from codetether_magics.providers.registry import ProviderRegistry


def registry_from_config(tmp_path: Path, text: str) -> ProviderRegistry:
    """Write ``text`` to ``tmp_path/config.toml`` (replacing an earlier one) and read a registry from it alone."""
    path = tmp_path / "config.toml"
    path.write_text(text)
    return ProviderRegistry.from_env({}, config_path=path)

"""Every test runs with its own data dir and with no real provider credentials in reach."""

from __future__ import annotations

import pytest

from codetether_magics.testing.environment import REAL_WORLD_VARS


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path, monkeypatch):
    for name in REAL_WORLD_VARS:
        monkeypatch.delenv(name, raising=False)
    data_dir = tmp_path / "codetether-data"
    monkeypatch.setenv("CODETETHER_DATA_DIR", str(data_dir))
    monkeypatch.setenv("CODETETHER_CONFIG", str(tmp_path / "no-config.toml"))
    return data_dir

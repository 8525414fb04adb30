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


@pytest.fixture
def shell(tmp_path, monkeypatch):
    """The process's one IPython shell with the extension loaded, working in ``tmp_path`` (where the
    fallback notebook, its transcript and any ``mcp.json`` land); unloaded afterwards (which stops MCP
    servers), and any ``%config CodeTether`` forgotten, since that config is shared by every shell test."""
    from IPython.core.interactiveshell import InteractiveShell

    from codetether_magics import load_ipython_extension, unload_ipython_extension

    monkeypatch.chdir(tmp_path)
    ip = InteractiveShell.instance()
    load_ipython_extension(ip)
    yield ip
    unload_ipython_extension(ip)
    ip.config.pop("CodeTether", None)


SHELL_KEY = "sk-test-shell-0123456789abcdef"


@pytest.fixture
def server(monkeypatch):
    """The scripted loopback model server, with OPENAI_API_KEY / OPENAI_BASE_URL pointing the magics
    at it; a test fails if the server saw a request it could not answer."""
    from codetether_magics.testing import ScriptedModelServer

    with ScriptedModelServer(api_key=SHELL_KEY) as server:
        monkeypatch.setenv("OPENAI_API_KEY", SHELL_KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        yield server
        assert server.errors == []

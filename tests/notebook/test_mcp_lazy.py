"""The ``mcp`` SDK costs nothing until a server is configured: not at import, not at ``%load_ext``,
not in a cell or ``%codetether mcp`` when no mcpServers file applies."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from codetether_magics.testing import ScriptedModelServer, Turn

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys
import codetether_magics
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", "codetether_magics")
after_load = "mcp" in sys.modules
ip.run_line_magic("codetether", "mcp")
ip.run_cell_magic("codetether", "--no-stream", "hello")
print("MODULES", after_load, sorted(m for m in sys.modules if m == "mcp" or m.startswith("mcp.")))
"""


def test_no_config_means_no_sdk_import(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # no user config either
    with ScriptedModelServer([Turn.text("hi", expect_tools=("python",)), Turn.text("Title")]) as server:
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(ROOT),
               "OPENAI_API_KEY": "sk-test-lazy-0123456789", "OPENAI_BASE_URL": server.openai_base_url,
               "CODETETHER_DATA_DIR": str(tmp_path / "data"), "CODETETHER_CONFIG": str(tmp_path / "none.toml"),
               "IPYTHONDIR": str(tmp_path / ".ipython")}
        run = subprocess.run([sys.executable, "-c", SCRIPT], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=120)
        assert server.errors == []
    assert run.returncode == 0, run.stderr
    assert "No MCP servers: no $CODETETHER_MCP_CONFIG, no mcp.json beside the notebook" in run.stdout
    assert "MODULES False []" in run.stdout, run.stdout


def test_a_bad_config_fails_the_cell_naming_the_file_and_entry(tmp_path: Path):
    (tmp_path / "mcp.json").write_text(json.dumps({"mcpServers": {"db": {"command": 42}}}))
    script = ("from IPython.core.interactiveshell import InteractiveShell\n"
              "ip = InteractiveShell.instance()\nip.run_line_magic('load_ext', 'codetether_magics')\n"
              "ip.run_cell('%%codetether --no-stream\\nhello')\nip.run_cell('%codetether mcp')\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(ROOT),
           "CODETETHER_DATA_DIR": str(tmp_path / "data"), "IPYTHONDIR": str(tmp_path / ".ipython"),
           "CODETETHER_CONFIG": str(tmp_path / "none.toml")}
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    shown = run.stdout + run.stderr
    problem = f"MCP config {tmp_path / 'mcp.json'}: server 'db': 'command' must be a string, not int."
    assert f"UsageError: %%codetether: {problem}" in shown, shown
    assert f"UsageError: %codetether mcp: {problem}" in shown, shown
    assert "Traceback" not in shown

"""The notebook tools on a real IPython shell namespace: ``python`` and ``variables``."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from codetether_magics.errors import ToolError
from codetether_magics.notebook.kernel_tools import notebook_tools


class _Shell:
    def __init__(self, user_ns):
        self.user_ns = user_ns
        self.user_ns_hidden = {"hidden_thing": user_ns.get("hidden_thing")}


def _tools(ns):
    python, variables = notebook_tools(_Shell(ns))
    return python, variables


async def test_python_runs_in_the_user_namespace_and_reports_stdout_value_and_errors():
    ns = {"data": [3, 1, 2]}
    python, _ = _tools(ns)
    assert python.name == "python" and not python.read_only  # it changes things: approval needed
    result = await python.handler({"code": "total = sum(data)\nprint('sum is', total)\nsorted(data)"})
    assert result.success
    assert result.output == "stdout:\nsum is 6\n\nvalue:\n[1, 2, 3]"
    assert ns["total"] == 6  # persists for later cells

    failed = await python.handler({"code": "print('before')\nundefined_name + 1"})
    assert not failed.success
    assert "stdout:\nbefore" in failed.output
    assert "NameError: name 'undefined_name' is not defined" in failed.output
    assert "undefined_name + 1" in failed.output  # the failing line is shown
    assert "pyexec.py" not in failed.output  # our own frames are not

    syntax = await python.handler({"code": "def broken(:"})
    assert not syntax.success and "SyntaxError" in syntax.output

    awaited = await python.handler({"code": "import asyncio\nawait asyncio.sleep(0)\n'awaited'"})
    assert awaited.output == "value:\n'awaited'"
    with pytest.raises(ToolError, match="'code' must be a non-empty string"):
        await python.handler({})


async def test_python_output_is_capped():
    python, _ = _tools({})
    result = await python.handler({"code": "print('x' * 100_000)"})
    assert len(result.output) < 17_000 and "more characters cut" in result.output


async def test_variables_lists_names_types_shapes_without_private_or_ipython_names():
    ns = {
        "count": 3, "name": "abc", "items": [1, 2], "_private": 1, "In": [], "Out": {},
        "sys": sys, "hidden_thing": object(),
    }
    ns["hidden_thing"] = ns["hidden_thing"]
    _, variables = _tools(ns)
    assert variables.read_only
    listing = await variables.handler({})
    lines = listing.splitlines()
    assert lines == ["count: int = 3", "name: str len=3 = 'abc'", "items: list len=2"]
    detail = await variables.handler({"name": "items"})
    assert detail == "items: list len=2 = [1, 2]"
    with pytest.raises(ToolError, match="no variable named 'nope'"):
        await variables.handler({"name": "nope"})


def test_variables_describes_dataframes_and_arrays_without_importing_pandas():
    # A fresh interpreter: pandas must not be imported by the tool when the user has not.
    script = textwrap.dedent(
        """
        import asyncio, sys
        import numpy as np
        from codetether_magics.notebook.kernel_tools import notebook_tools

        class Shell:
            user_ns = {"arr": np.zeros((2, 3))}
            user_ns_hidden = {}

        tool = notebook_tools(Shell())[1]
        print(asyncio.run(tool.handler({})))
        print("pandas imported:", "pandas" in sys.modules)
        import pandas as pd
        Shell.user_ns["df"] = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
        print(asyncio.run(tool.handler({})))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert "arr: numpy.ndarray shape=(2, 3) dtype=float64" in out
    assert "pandas imported: False" in out
    assert "df: pandas.DataFrame shape=(2, 2) columns=[a: int64, b: " in out


async def test_tool_output_never_carries_a_credential(monkeypatch):
    from codetether_magics.notebook.redact import redact, redacting

    secret = "sk-test-redact-0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    monkeypatch.setenv("VAULT_TOKEN", "hvs.vault-token-abcdef")
    monkeypatch.setenv("SHORT_TOKEN", "abc")  # too short to be a credential: left alone
    assert redact(f"key={secret} token=hvs.vault-token-abcdef abc") == "key=[redacted] token=[redacted] abc"
    python = redacting(_tools({})[0])
    result = await python.handler({"code": "import os\nprint(os.environ['OPENAI_API_KEY'])\nos.environ['VAULT_TOKEN']"})
    assert secret not in result.output and "hvs.vault-token" not in result.output
    assert result.output == "stdout:\n[redacted]\n\nvalue:\n'[redacted]'"

"""The README's Python example runs as written, against the loopback model server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from codetether_magics.testing import ScriptedModelServer, Turn

README = Path(__file__).resolve().parent.parent / "README.md"


def python_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) == 1, "the README should have exactly one Python example"
    return blocks[0]


def test_readme_python_example_runs(tmp_path, isolated_environment):
    answer = "Hello there, nice to meet."
    turns = [Turn.text(answer), Turn.text("Greeting")]  # the answer, then the first turn's title call
    with ScriptedModelServer(turns) as server:
        env = {**os.environ, "OPENAI_API_KEY": "sk-test-readme", "OPENAI_BASE_URL": server.openai_base_url}
        out = subprocess.run([sys.executable, "-c", python_example()], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert answer in out.stdout
        assert server.errors == []
        prompts = [r.body["messages"][-1]["content"] for r in server.model_requests[:1]]
    assert "Say hello in five words." in str(prompts)
    saved = list((isolated_environment / "sessions").glob("*.json"))
    assert len(saved) == 1 and answer in saved[0].read_text(encoding="utf-8")

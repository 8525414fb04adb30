"""Run real notebooks in a real ipykernel against the scripted loopback model server.

    nb = make_notebook("%load_ext codetether_magics", "%%codetether\\nHello")
    executed = run_notebook(nb, tmp_path, kernel_env(tmp_path, server))

``LiveKernel`` is the iopub-level helper: it starts a kernel with jupyter_client, runs
code, collects every iopub message with the time it arrived, and can interrupt.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

__all__ = ["KernelRun", "LiveKernel", "kernel_env", "make_notebook", "new_api_key", "run_notebook", "text_of"]

KERNEL_NAME = "python3"  # ipykernel's native spec: the interpreter running the tests


def new_api_key() -> str:
    return "sk-test-" + secrets.token_hex(12)


def make_notebook(*sources: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in sources])
    nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "Python 3", "language": "python"}
    return nb


def kernel_env(folder: Path, server: Any = None, api_key: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of a test kernel: this process's (already scrubbed by conftest), an
    IPython dir of its own, and the scripted server as the OpenAI provider."""
    env = dict(os.environ)
    env["IPYTHONDIR"] = str(folder / ".ipython")
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    env.pop("JPY_SESSION_NAME", None)
    if server is not None:
        env["OPENAI_BASE_URL"] = server.openai_base_url
        env["OPENAI_API_KEY"] = api_key or new_api_key()
    env.update(extra)
    return env


def run_notebook(
    nb: nbformat.NotebookNode,
    folder: Path,
    env: dict[str, str],
    *,
    name: str = "analysis.ipynb",
    allow_errors: bool = False,
    timeout: int = 60,
) -> nbformat.NotebookNode:
    """Write ``nb`` to ``folder/name``, execute it there with nbclient, save and return it."""
    path = folder / name
    nbformat.write(nb, path)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name=KERNEL_NAME, allow_errors=allow_errors,
        resources={"metadata": {"path": str(folder)}},
    )
    client.execute(env=env)
    nbformat.write(nb, path)
    return nb


def text_of(cell: Any, mime: str = "text/plain") -> str:
    """Everything a cell printed or displayed as ``mime`` (streams count as text/plain)."""
    parts = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream" and mime == "text/plain":
            parts.append(output["text"])
        elif output["output_type"] == "error" and mime == "text/plain":
            parts.append("\n".join(output["traceback"]))
        elif mime in output.get("data", {}):
            parts.append(output["data"][mime])
    return "\n".join(parts)


@dataclass
class KernelRun:
    """What one ``execute`` produced: iopub messages (with arrival times) and the reply."""

    messages: list[tuple[float, dict]] = field(default_factory=list)
    reply: dict | None = None
    reply_time: float = 0.0

    def of_type(self, *types: str) -> list[tuple[float, dict]]:
        return [(t, m) for t, m in self.messages if m["msg_type"] in types]

    def widget_updates(self) -> list[tuple[float, dict]]:
        return [
            (t, m) for t, m in self.of_type("comm_msg")
            if m["content"].get("data", {}).get("method") == "update"
        ]

    def stream_text(self) -> str:
        return "".join(m["content"]["text"] for _, m in self.of_type("stream"))

    def outputs_json(self) -> str:
        return json.dumps([m["content"] for _, m in self.messages], default=str)


class LiveKernel:
    """A kernel started in ``folder`` with ``env``; use as a context manager."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        from jupyter_client.manager import KernelManager

        self.km = KernelManager(kernel_name=KERNEL_NAME)
        self.km.start_kernel(cwd=str(folder), env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.seen: list[dict] = []  # every iopub message of every execute, for leak checks

    def __enter__(self) -> "LiveKernel":
        return self

    def __exit__(self, *exc: object) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)

    def start(self, code: str) -> str:
        return self.kc.execute(code)

    def collect(self, msg_id: str, timeout: float = 60.0, *, until: Any = None) -> KernelRun:
        """iopub messages of ``msg_id`` until the kernel is idle (or ``until(run)`` is true)."""
        run = KernelRun()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                message = self.kc.get_iopub_msg(timeout=0.2)
            except Exception:  # queue.Empty
                continue
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            run.messages.append((time.monotonic(), message))
            self.seen.append(message)
            if until is not None and until(run):
                return run
            if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
                reply = self.kc.get_shell_msg(timeout=10)
                run.reply, run.reply_time = reply, time.monotonic()
                return run
        raise TimeoutError(f"kernel did not finish {msg_id} within {timeout} s")

    def execute(self, code: str, timeout: float = 60.0) -> KernelRun:
        return self.collect(self.start(code), timeout)

    def seen_json(self) -> str:
        return json.dumps([m["content"] for m in self.seen], default=str)

    def interrupt(self) -> None:
        self.km.interrupt_kernel()

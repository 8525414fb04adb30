"""Re-record the example notebooks against the project's scripted test model server.

    .venv/bin/python scripts/record_notebooks.py [quickstart|plots|data ...]

For each example: write notebooks/<name>.ipynb from the cells in scripts/example_notebooks.py,
delete its old transcript, start ``ScriptedModelServer`` with that notebook's scripted model
turns, execute the notebook with nbclient in a kernel whose OPENAI_BASE_URL points at the
server (so every %%codetether cell runs live), then save the executed notebook (its outputs
are what ``pytest --nbval notebooks`` compares) with the new transcript beside it.

The transcript's ``metadata.directory`` (the tools' working directory) is then written as
"." so it names the notebook's folder on any machine, not this one's absolute path.

Deterministic: the same cells, the same scripted answers and fixed cell ids give the same
outputs on every re-recording. Fails loudly when a cell errors, when the server saw a request
its script did not expect, when scripted turns are left over, or when the test key leaks
into a saved file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from example_notebooks import EXAMPLES, Example  # noqa: E402

from codetether_magics.testing.environment import REAL_WORLD_VARS  # noqa: E402

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@contextmanager
def _kernel_environment(values: dict[str, str]) -> Iterator[None]:
    """nbclient's kernel inherits this process's environment: set it for one recording."""
    saved = dict(os.environ)
    # Provider settings must not leak into a recording from the recorder's own shell (the
    # config file is pointed at a file that does not exist, in ``record``).
    for name in REAL_WORLD_VARS:
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def build_notebook(example: Example):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for index, (kind, source, *tags) in enumerate(example.cells):
        cell = nbformat.v4.new_markdown_cell(source) if kind == "md" else nbformat.v4.new_code_cell(source)
        cell["id"] = f"{example.name}-{index:02d}"  # fixed ids: re-recording changes nothing
        if tags:
            cell.metadata["tags"] = list(tags)
        nb.cells.append(cell)
    return nb


def record(example: Example, folder: Path = NOTEBOOKS) -> list[str]:
    """Record one example notebook; returns the problems found (empty when all went well)."""
    import nbformat
    from nbclient import NotebookClient

    from codetether_magics.testing import ScriptedModelServer

    notebook = folder / f"{example.name}.ipynb"
    transcript = folder / f"{example.name}.codetether.json"
    transcript.unlink(missing_ok=True)
    for name in example.files:  # recording elsewhere (a test): what the notebook runs comes along
        if folder.resolve() != NOTEBOOKS.resolve():
            (folder / name).write_bytes((NOTEBOOKS / name).read_bytes())
    nb = build_notebook(example)
    nbformat.write(nb, notebook)
    key = "sk-test-" + secrets.token_hex(12)
    with tempfile.TemporaryDirectory(prefix="codetether-record-") as data_dir, \
            ScriptedModelServer(example.turns(), api_key=key) as server:
        env = {"OPENAI_BASE_URL": server.openai_base_url, "OPENAI_API_KEY": key, "CODETETHER_DATA_DIR": data_dir,
               "CODETETHER_CONFIG": os.path.join(data_dir, "no-config.toml")}  # not the recorder's own config
        with _kernel_environment(env):
            # No widget state: JupyterLab shows the text/html fallback of a saved view anyway, and
            # the state holds durations that would change the file on every re-recording.
            client = NotebookClient(nb, timeout=120, kernel_name="python3", record_timing=False,
                                    store_widget_state=False, extra_arguments=["--IPKernelApp.log_level=ERROR"],
                                    resources={"metadata": {"path": str(folder)}})
            client.execute()
        problems = list(server.errors)
        if server.remaining:
            problems.append(f"{server.remaining} scripted turn(s) were never requested")
    problems += [f"{example.name}: cell {index} kept a widget output (the live view must be cleared at the end)"
                 for index, cell in enumerate(nb.cells)
                 if any(WIDGET_VIEW in output.get("data", {}) for output in cell.get("outputs", []))]
    nbformat.write(nb, notebook)
    if not transcript.is_file():
        return [*problems, f"no transcript was written at {transcript}"]
    asyncio.run(_make_portable(transcript))
    return problems + _leaks(key, [notebook, transcript])


async def _make_portable(transcript: Path) -> None:
    """Record the tools' working directory as "." (the notebook's folder, where every kernel
    that runs it starts) instead of this machine's absolute path, so the notebook replays
    anywhere: on Binder, in CI, in another checkout."""
    from codetether_magics.session.session import Session

    session = await Session.load_path(transcript)
    session.metadata.directory = "."
    await session.save()
    # The storage layer's advisory lock file: no writer is left, and it is no part of the example.
    transcript.with_name(transcript.name + ".lock").unlink(missing_ok=True)


def _leaks(key: str, paths: list[Path]) -> list[str]:
    return [f"the API key leaked into {path}" for path in paths if path.is_file() and key in path.read_text()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Re-record the example notebooks against the scripted model server.")
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"one of {', '.join(EXAMPLES)} (default: all)")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in EXAMPLES]
    if unknown:
        parser.error(f"unknown notebook {', '.join(unknown)}; choose from {', '.join(EXAMPLES)}")
    failed = False
    for name in args.names or list(EXAMPLES):
        problems = record(EXAMPLES[name])
        status = "ok" if not problems else "FAILED"
        print(f"{name}: {status} -> notebooks/{name}.ipynb, notebooks/{name}.codetether.json")
        for problem in problems:
            print(f"  - {problem}")
        failed = failed or bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

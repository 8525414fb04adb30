"""Run the quickstart notebook headless, offline, with no API key: its agent cells replay.

    .venv/bin/python scripts/quickstart.py            (what `make quickstart` runs)

Executes notebooks/quickstart.ipynb in a fresh kernel with nbclient, with replay forced
(CODETETHER_REPLAY=1), so every %%codetether cell is answered from the transcript recorded
beside the notebook (notebooks/quickstart.codetether.json) and no network call is made.
Writes the executed copy to out/quickstart.ipynb and says how to open the notebook in JupyterLab.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "quickstart.ipynb"
OUTPUT = ROOT / "out" / "quickstart.ipynb"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebook", type=Path, default=NOTEBOOK, help="notebook to run")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="where the executed copy goes")
    parser.add_argument("--timeout", type=int, default=300, help="seconds allowed per cell")
    return parser.parse_args(argv)


def _replay_environment(notebook: Path) -> None:
    """The kernel inherits this process's environment: force replay and name the notebook."""
    os.environ["CODETETHER_REPLAY"] = "1"
    # nbclient does not tell the kernel which notebook it runs; the magic reads this instead.
    os.environ["CODETETHER_NOTEBOOK"] = str(notebook)


def _agent_answers(nb) -> list[str]:
    """Each %%codetether cell's final answer on one line (whitespace folded, cut to 110 characters)."""
    answers = []
    for cell in nb.cells:
        if cell.cell_type != "code" or not cell.source.startswith("%%codetether"):
            continue
        for output in cell.get("outputs", []):
            plain = output.get("data", {}).get("text/markdown") and output["data"].get("text/plain", "")
            if plain:
                line = " ".join(plain.split())
                answers.append(line if len(line) <= 110 else line[:107] + "...")
    return answers


# The kernel's own log goes to this terminal; on this loopback-only run its notice about
# unencrypted TCP is noise for a newcomer, so only errors are shown.
_KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]


def run(notebook: Path, output: Path, timeout: int) -> int:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = notebook.resolve()
    if not notebook.is_file():
        print(f"error: no notebook at {notebook}", file=sys.stderr)
        return 2
    _replay_environment(notebook)
    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", extra_arguments=_KERNEL_ARGUMENTS,
        resources={"metadata": {"path": str(notebook.parent)}},
    )
    started = time.monotonic()
    print(f"Running {notebook.relative_to(ROOT) if notebook.is_relative_to(ROOT) else notebook} "
          "(replaying its recorded agent turns; no API key, no network)...")
    try:
        client.execute()
    except CellExecutionError as exc:
        print(f"error: a cell failed while running {notebook.name}:\n{exc}", file=sys.stderr)
        return 1
    finally:
        output.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, output)
    for answer in _agent_answers(nb):
        print(f"  agent: {answer}")
    print(f"Done in {time.monotonic() - started:.1f} s. Executed copy: {output}")
    print("Open the notebook in JupyterLab:  .venv/bin/jupyter lab notebooks/quickstart.ipynb")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    return run(args.notebook, args.output.resolve(), args.timeout)


if __name__ == "__main__":
    sys.exit(main())

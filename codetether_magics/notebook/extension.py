"""``%load_ext codetether_magics`` and ``%unload_ext``: silent, fast, and mirror images.

Loading registers the ``CodeTether`` magics, starts capturing images from cell outputs
(so ``-i last`` can find a plot made before the first agent cell), and under ipykernel
adds the input transformer that turns a ``%%codetether`` cell into a top-level ``await``
and schedules the first cell's imports for when the kernel is idle (``warmup``).
Unloading removes every one of these; loading twice is a no-op.
"""

from __future__ import annotations

from typing import Any

from .cell_rewrite import RUNNER_NAME, rewrite_codetether_cell
from .magics import CodeTether
from .warmup import Warmup

__all__ = ["is_ipykernel", "load", "unload"]


def is_ipykernel(shell: Any) -> bool:
    """ipykernel runs cells as coroutines on its loop; other shells get the thread fallback."""
    return getattr(shell, "kernel", None) is not None


def _loaded(shell: Any) -> CodeTether | None:
    magics = shell.magics_manager.registry.get(CodeTether.__name__)
    return magics if isinstance(magics, CodeTether) else None


def load(shell: Any) -> None:
    if _loaded(shell) is not None:
        return
    magics = CodeTether(shell=shell)
    shell.register_magics(magics)
    magics.start_capture()
    if is_ipykernel(shell):
        shell.input_transformers_cleanup.append(rewrite_codetether_cell)
        magics.install_runner()
        shell.events.register("pre_run_cell", magics.install_runner)  # %reset clears user_ns
        magics.warmup = Warmup()
        magics.warmup.start()


def unload(shell: Any) -> None:
    magics = _loaded(shell)
    if magics is None:
        return
    magics.close()
    warmup = getattr(magics, "warmup", None)
    if warmup is not None:
        warmup.cancel()
    if magics.install_runner in shell.events.callbacks["pre_run_cell"]:
        shell.events.unregister("pre_run_cell", magics.install_runner)
    while rewrite_codetether_cell in shell.input_transformers_cleanup:
        shell.input_transformers_cleanup.remove(rewrite_codetether_cell)
    for namespace in (shell.user_ns, shell.user_ns_hidden):
        namespace.pop(RUNNER_NAME, None)
    _unregister_magics(shell, magics)
    if magics in shell.configurables:
        shell.configurables.remove(magics)


def _unregister_magics(shell: Any, magics: CodeTether) -> None:
    manager = shell.magics_manager
    manager.registry.pop(CodeTether.__name__, None)
    for kind, table in magics.magics.items():
        for name, function in table.items():
            if manager.magics[kind].get(name) == function:
                del manager.magics[kind][name]

"""The warm-up after ``%load_ext``: one import per turn of the running loop, nothing without one."""

from __future__ import annotations

import asyncio
import logging
import sys
import types

from codetether_magics.notebook import warmup
from codetether_magics.notebook.warmup import WARM_MODULES, Warmup


def test_every_warm_module_exists():
    """A module renamed or moved must be renamed here too, or the first cell is cold again."""
    import importlib.util

    missing = [name for name in WARM_MODULES if importlib.util.find_spec(name) is None]
    assert missing == []


def test_without_a_running_loop_nothing_is_scheduled():
    ahead = Warmup(("codetether_magics_no_such_module",))
    assert ahead.start() is False and not ahead.done


async def test_one_import_per_turn_of_the_loop_then_done(monkeypatch, caplog):
    imported: list[str] = []
    order: list[str] = []

    def fake_import(name: str) -> types.ModuleType:
        imported.append(name)
        order.append(name)
        if name == "broken":
            raise ImportError("no module named broken")
        return types.ModuleType(name)

    monkeypatch.setattr(warmup.importlib, "import_module", fake_import)
    ahead = Warmup(("first", "broken", "third"))
    ahead.pending = [step for step in ahead.pending if isinstance(step, str)] + [lambda: order.append("ca")]
    loop = asyncio.get_running_loop()
    with caplog.at_level(logging.DEBUG, logger="codetether_magics.notebook.warmup"):
        assert ahead.start() is True
        assert imported == []  # nothing on the caller's path: the loader returns at once
        loop.call_soon(order.append, "other work")  # scheduled after the first import
        for _ in range(10):
            await asyncio.sleep(0)
    assert order[:2] == ["first", "other work"]  # the loop ran other callbacks between imports
    assert imported == ["first", "broken", "third"] and order[-1] == "ca" and ahead.done
    assert "warming up broken failed" in caplog.text


async def test_cancel_stops_the_imports_not_yet_done(monkeypatch):
    imported: list[str] = []
    monkeypatch.setattr(warmup.importlib, "import_module", lambda name: imported.append(name))
    ahead = Warmup(("a", "b", "c"))
    ahead.start()
    await asyncio.sleep(0)
    ahead.cancel()
    for _ in range(5):
        await asyncio.sleep(0)
    assert imported == ["a"] and ahead.done


def test_modules_already_imported_are_skipped():
    assert "asyncio" in sys.modules
    assert [step for step in Warmup(("asyncio", "not_yet_imported_mod")).pending if isinstance(step, str)] == [
        "not_yet_imported_mod"]


def test_every_exercise_step_runs():
    """The steps after the imports call into other modules: one that moved must fail here, not
    silently in a kernel (the warm-up only logs at debug level)."""
    steps = [step for step in Warmup(()).pending if not isinstance(step, str)]
    assert len(steps) == 3
    for step in steps:
        step()

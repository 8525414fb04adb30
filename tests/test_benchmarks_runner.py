"""The benchmarks runner (``python -m benchmarks``): discovery, the table, the exit status."""

from __future__ import annotations

import importlib
import inspect
import sys
import types

import pytest

from benchmarks import __main__ as runner


def test_discovers_the_bench_modules():
    areas = runner.available_areas()
    assert "storage" in areas and all(not a.startswith("bench_") for a in areas)


def test_every_bench_module_imports_and_has_run():
    for area in runner.available_areas():
        module = importlib.import_module(f"benchmarks.bench_{area}")
        assert callable(module.run), area
        assert inspect.signature(module.run).parameters["quick"].default is False, area


def test_prints_machine_and_one_table_and_fails_on_a_missed_target(monkeypatch, capsys):
    rows = {
        "good": [{"benchmark": "fast | thing", "ours": "1 ms", "baseline": "2 ms", "ratio": 0.5,
                  "target": "≤ 1", "ok": True},
                 {"benchmark": "info", "ours": "1", "baseline": "1", "ratio": 1, "target": "(info)", "ok": None}],
        "bad": [{"benchmark": "slow", "ours": "9 ms", "baseline": "1 ms", "ratio": 9, "target": "≤ 1", "ok": False}],
    }
    for area, result in rows.items():
        module = types.ModuleType(f"benchmarks.bench_{area}")
        module.run = lambda quick=False, result=result: result
        monkeypatch.setitem(sys.modules, f"benchmarks.bench_{area}", module)
    monkeypatch.setattr(runner, "available_areas", lambda: ["bad", "good"])
    assert runner.main(["good", "--quick"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Machine: ") and "cores, Python " in out
    assert "| benchmark | ours | baseline | ratio | target | ok |" in out
    assert "| fast \\| thing | 1 ms | 2 ms | 0.5 | ≤ 1 | yes |" in out and "| info | 1 | 1 | 1 | (info) | - |" in out
    assert runner.main([]) == 1
    assert "| slow | 9 ms | 1 ms | 9 | ≤ 1 | **NO** |" in capsys.readouterr().out


def test_unknown_area_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as caught:
        runner.main(["no-such-area"])
    assert caught.value.code == 2 and "unknown area no-such-area" in capsys.readouterr().err


def test_a_crashing_area_is_reported_as_a_failed_row(monkeypatch, capsys):
    module = types.ModuleType("benchmarks.bench_boom")

    def run(quick=False):
        raise RuntimeError("boom")

    module.run = run
    monkeypatch.setitem(sys.modules, "benchmarks.bench_boom", module)
    monkeypatch.setattr(runner, "available_areas", lambda: ["boom"])
    assert runner.main([]) == 1
    assert "| boom: failed to run | RuntimeError |" in capsys.readouterr().out

"""Benchmarks: each ``bench_<area>.py`` measures our code against a baseline in the same run.

    python -m benchmarks            # every area, one Markdown table
    python -m benchmarks storage    # one area (several may be named)
    python -m benchmarks --quick    # smaller sizes: a smoke run

A module provides ``run(quick: bool = False) -> list[dict]``; each dict has the keys
``benchmark, ours, baseline, ratio, target, ok`` (``ok`` None: informational, no target).
The exit status is 1 when a target is missed. Benchmarks are not run by pytest.
"""

"""One row of the benchmarks table for a time measured against a target in milliseconds."""

from __future__ import annotations

from typing import Any


def ms_target_row(benchmark: str, ours: str, baseline: str, ratio: float, measured_ms: float,
                  target_ms: float, target_prefix: str = "<") -> dict[str, Any]:
    """The row's ``target`` reads ``"<prefix> <target> ms"`` and ``ok`` is ``measured_ms < target_ms``,
    so the text a reader sees and the check the exit status follows cannot drift apart."""
    return {"benchmark": benchmark, "ours": ours, "baseline": baseline, "ratio": ratio,
            "target": f"{target_prefix} {target_ms:.0f} ms", "ok": measured_ms < target_ms}

"""Run the benchmarks and print one Markdown table (see ``benchmarks/__init__.py``)."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

COLUMNS = ("benchmark", "ours", "baseline", "ratio", "target", "ok")
HERE = Path(__file__).resolve().parent


def available_areas() -> list[str]:
    names = (info.name for info in pkgutil.iter_modules([str(HERE)]))
    return sorted(name[len("bench_"):] for name in names if name.startswith("bench_"))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_line() -> str:
    return (f"Machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()} "
            f"({platform.python_implementation()}), {platform.system()} {platform.release()}")


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "**NO**"
    if value is None:
        return "-"
    return str(value).replace("|", "\\|")


def run_area(area: str, quick: bool) -> list[dict[str, Any]]:
    try:
        module = importlib.import_module(f"benchmarks.bench_{area}")
        return list(module.run(quick=quick))
    except Exception as exc:  # noqa: BLE001 - one broken area must not hide the others
        traceback.print_exc()
        return [{"benchmark": f"{area}: failed to run", "ours": type(exc).__name__, "baseline": "-",
                 "ratio": "-", "target": "-", "ok": False}]


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cell(row.get(key, "")) for key in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    areas = available_areas()
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("areas", nargs="*", metavar="AREA", help=f"areas to run (default: all of {', '.join(areas)})")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a fast smoke run")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.areas) - set(areas))
    if unknown:
        parser.error(f"unknown area {', '.join(unknown)}; choose from {', '.join(areas)}")
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    for area in args.areas or areas:
        print(f"running {area}...", file=sys.stderr, flush=True)
        rows += run_area(area, args.quick)
    print(machine_line() + (" (--quick)" if args.quick else ""))
    print()
    print(table(rows))
    print(f"\n{len(rows)} results in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    # ok None marks an informational row (no target).
    return 0 if all(row.get("ok") is not False for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

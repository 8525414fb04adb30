"""A tool cannot freeze or exhaust the process: tried as an attacker would, with counts, times and memory.

Each case repeats its attack and asserts a bound on every try: a catastrophic ``grep``
pattern, a 5 GB sparse file, FIFOs, sockets and devices, symlink loops, cancelled calls
(no thread or process left), and commands or code printing without end.
"""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import threading
import time
import tracemalloc
from pathlib import Path

import pytest

from codetether_magics.agent.tools import builtin_tools
from codetether_magics.agent.tools import common, fsafe
from codetether_magics.agent.tools.grep import GREP_TIME_LIMIT
from codetether_magics.agent.tools.base import ToolResult
from codetether_magics.errors import ToolError
from codetether_magics.notebook.pyexec import OUTPUT_LIMIT, run_code

REDOS = r"(a+)+$"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    base = tmp_path / "project"
    base.mkdir()
    (base / "src.py").write_text("import os\nVALUE = 1\n")
    (base / "aaaa.txt").write_text("a" * 50_000 + "b\n")
    return base


async def call(root: Path, name: str, **args) -> str:
    tool = next(t for t in builtin_tools(root) if t.name == name)
    result = await tool.handler(args)
    return result.output if isinstance(result, ToolResult) else result


def children() -> set[int]:
    """Pids of this process's live (not zombie) children."""
    mine, found = str(os.getpid()), set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == mine:
                found.add(int(entry))
    return found


async def settled_thread_count(expected: int, within: float = 1.0) -> int:
    """``threading.active_count()`` once it is down to ``expected`` (asyncio's child watcher threads end a moment
    late; a thread another test left may end meanwhile, hence "down to")."""
    deadline = time.monotonic() + within
    while threading.active_count() > expected and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    return threading.active_count()


# -- grep: bounded in time, interruptible --------------------------------------------


async def test_a_catastrophic_grep_pattern_ends_with_an_error_within_its_time_limit(root):
    tries, times = 3, []
    for _ in range(tries):
        started = time.monotonic()
        with pytest.raises(ToolError, match=r"grep stopped after 5 s while searching aaaa.txt.*backtrack"):
            await call(root, "grep", pattern=REDOS)
        times.append(time.monotonic() - started)
    print(f"ReDoS grep: {tries} tries, {tries} ended with the error, slowest {max(times):.2f} s")
    assert max(times) < GREP_TIME_LIMIT + 4  # the bound plus a loaded machine starting and reaping the worker
    assert children() == set()  # every worker was killed and reaped
    assert "src.py:2: VALUE = 1" in await call(root, "grep", pattern="VALUE")  # and grep still works


async def test_cancelling_a_grep_stops_it_at_once_and_leaves_nothing_behind(root):
    threads_before, tries, waits = threading.active_count(), 10, []
    for _ in range(tries):
        task = asyncio.ensure_future(call(root, "grep", pattern=REDOS))
        await asyncio.sleep(0.3)  # the worker is deep in backtracking by now
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        waits.append(time.monotonic() - started)
    print(f"grep cancel: {tries} tries, slowest stop {max(waits) * 1000:.0f} ms")
    assert max(waits) < 1.0
    assert children() == set()
    assert await settled_thread_count(threads_before) <= threads_before


async def test_grep_pattern_and_compile_errors_are_clear(root):
    with pytest.raises(ToolError, match="not a valid regular expression"):
        await call(root, "grep", pattern="(")
    assert await call(root, "grep", pattern="a{4294967294}") == "[no matches]"  # compiles in the worker only


# -- read: bounded in memory ------------------------------------------------------------


def sparse(path: Path, head: bytes, size: int = 5 * 1024**3) -> Path:
    with open(path, "wb") as out:
        out.write(head)
        out.truncate(size)
    return path


async def measured(root: Path, **args) -> tuple[str, int, float]:
    tracemalloc.start()
    started = time.monotonic()
    try:
        try:
            out = await call(root, "read", **args)
        except ToolError as exc:
            out = f"Error: {exc}"
        return out, tracemalloc.get_traced_memory()[1], time.monotonic() - started
    finally:
        tracemalloc.stop()


async def test_reading_a_5_gb_sparse_file_costs_what_it_returns(root):
    text = sparse(root / "big.log", b"".join(b"line %d of the log\n" % n for n in range(1, 501)))
    binary = sparse(root / "zeros.bin", b"")
    one_line = sparse(root / "one-line.txt", b"x" * 9000)  # no newline before the hole: a 5 GB line
    cases = [
        ({"path": "big.log"}, "[more lines follow; read on with offset="),
        ({"path": "big.log", "offset": 480, "limit": 5}, "   484\tline 484 of the log"),
        ({"path": "zeros.bin"}, "looks like a binary file (5368709120 bytes)"),
        ({"path": "big.log", "offset": 10_000_000}, "lies past the first 16 MiB"),
        ({"path": "one-line.txt", "limit": 1}, "[line cut:"),
    ]
    rss_before = _rss()
    for args, expected in cases:
        out, peak, seconds = await measured(root, **args)
        print(f"read {args}: peak {peak / 1024:.0f} KiB, {seconds * 1000:.0f} ms")
        assert expected in out, out[-300:]
        assert len(out.encode()) <= 4096
        assert peak < 2 * 1024 * 1024 and seconds < 2.0
    assert _rss() - rss_before < 64 * 1024 * 1024
    assert text.stat().st_size == binary.stat().st_size == one_line.stat().st_size == 5 * 1024**3


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


async def test_read_pages_on_from_where_it_stopped(root):
    (root / "many.txt").write_text("".join(f"row {n}\n" for n in range(1, 3001)))
    first = await call(root, "read", path="many.txt")
    next_offset = int(first.rsplit("offset=", 1)[1].rstrip("]"))
    assert f"{next_offset - 1:6}\trow {next_offset - 1}" in first
    second = await call(root, "read", path="many.txt", offset=next_offset)
    assert second.startswith(f"{next_offset:6}\trow {next_offset}")


# -- FIFOs, sockets, devices --------------------------------------------------------------


def special_files(root: Path) -> list[str]:
    os.mkfifo(root / "pipe")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(root / "sock"))
    names = ["pipe", "sock"]
    try:
        os.mknod(root / "null-dev", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        names.append("null-dev")
    except PermissionError:  # not root: no device node of our own
        pass
    return names


ATTEMPTS = {
    "read": lambda name: {"path": name},
    "write": lambda name: {"path": name, "content": "x"},
    "edit": lambda name: {"path": name, "old_string": "a", "new_string": "b"},
    "grep": lambda name: {"pattern": "x", "path": name},
}


async def test_fifos_sockets_and_devices_are_refused_without_blocking_or_leaking(root):
    names = special_files(root)
    threads_before, tries, refused, slowest = threading.active_count(), 0, 0, 0.0
    for _ in range(10):  # six stuck FIFO reads used to wedge the kernel for good
        for name in names:
            for tool, args in ATTEMPTS.items():
                tries += 1
                started = time.monotonic()
                try:
                    await asyncio.wait_for(call(root, tool, **args(name)), 5)
                except ToolError as exc:
                    refused += "regular files" in str(exc)
                slowest = max(slowest, time.monotonic() - started)
    print(f"special files {names}: {tries} tries, {refused} refused, slowest {slowest * 1000:.0f} ms")
    assert refused == tries and slowest < 1.0
    listing = await call(root, "list")
    assert "pipe" in listing.splitlines()  # listed by name, never opened
    assert set(names).isdisjoint((await call(root, "glob", pattern="*")).splitlines())
    assert "src.py:1: import os" in await call(root, "grep", pattern="import")  # the walk passes them by
    assert await settled_thread_count(threads_before) <= threads_before
    assert children() == set()


def test_a_fifo_swapped_in_after_the_check_is_refused_after_the_open(root, monkeypatch):
    os.mkfifo(root / "pipe")
    monkeypatch.setattr(fsafe, "file_kind", lambda path: "file")  # the check said 'file'; then the swap
    started = time.monotonic()
    with pytest.raises(fsafe.RefusedFile, match="is a FIFO"):
        fsafe.open_regular(root / "pipe", "pipe")
    assert time.monotonic() - started < 0.5  # O_NONBLOCK: the open did not wait for a writer


# -- symlink loops --------------------------------------------------------------------------


async def test_symlink_loops_are_skipped_by_every_walk(root):
    (root / "loop-a").symlink_to("loop-b")
    (root / "loop-b").symlink_to("loop-a")
    (root / "sub").mkdir()
    (root / "sub" / "up").symlink_to("..")
    (root / "sub" / "self").symlink_to(".")
    (root / "sub" / "deep.py").write_text("VALUE = 2\n")
    started = time.monotonic()
    assert (await call(root, "glob", pattern="**/*.py")).splitlines() == ["src.py", "sub/deep.py"]
    assert (await call(root, "grep", pattern="VALUE", include="*.py")).splitlines() == [
        "src.py:2: VALUE = 1", "sub/deep.py:1: VALUE = 2"]
    assert {"loop-a", "loop-b", "sub/"} <= set((await call(root, "list")).splitlines())
    assert {"up/", "self/"} <= set((await call(root, "list", path="sub")).splitlines())
    with pytest.raises(ToolError, match="symlink loop"):
        await call(root, "read", path="loop-a")
    assert time.monotonic() - started < 3.0


async def test_a_file_name_that_is_not_utf8_is_shown_escaped_not_fatal(root):
    from codetether_magics.caps import cap_tool_output

    (root / os.fsdecode(b"\xff-bad.txt")).write_text("hello\n")
    outputs = [await call(root, "glob", pattern="*.txt"), await call(root, "list"),
               await call(root, "grep", pattern="hello")]
    assert all("\\xff-bad.txt" in out for out in outputs), outputs
    assert all(cap_tool_output(out) for out in outputs)  # every answer can be encoded for the model
    report = await run_code("print('\\udcff')", {})
    assert "\\udcff" in cap_tool_output(report.render())


# -- threads: cancelled calls leave none behind ----------------------------------------------


async def test_cancelled_threaded_tools_leave_no_thread(root):
    def slow(args):
        for _ in range(10_000):
            common.checkpoint()
            time.sleep(0.01)
        return "finished"

    tool = common.threaded_tool("slow", "waits", slow, properties={}, read_only=True)
    threads_before, tries, waits = threading.active_count(), 25, []
    for _ in range(tries):
        task = asyncio.ensure_future(tool.handler({}))
        await asyncio.sleep(0.02)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        waits.append(time.monotonic() - started)
        assert threading.active_count() <= threads_before  # joined before the cancellation came out
    print(f"threaded cancel: {tries} tries, 0 threads left, slowest {max(waits) * 1000:.0f} ms")
    assert max(waits) < common.STOP_GRACE


async def test_a_threaded_tool_past_its_time_limit_ends_with_an_error():
    def endless(args):
        while True:
            common.checkpoint()
            time.sleep(0.01)

    started = time.monotonic()
    with pytest.raises(ToolError, match="`endless` stopped after 0.2 s without finishing"):
        await common.run_in_thread("endless", endless, {}, limit=0.2)
    assert time.monotonic() - started < 1.0
    # The tool's own thread ended with its error. (Counting all threads was flaky under load:
    # other tests' event loops and child watchers start and end threads of their own meanwhile.)
    assert [t for t in threading.enumerate() if t.name == "codetether-tool-endless"] == []


# -- bash and python: output bounded while they run, killed on interrupt ------------------------


async def test_bash_printing_for_ever_keeps_a_bounded_amount_of_memory(root):
    from codetether_magics.agent.tools.shell import BASH_HEAD_BYTES, BASH_TAIL_BYTES, run_command

    tracemalloc.start()
    try:
        with pytest.raises(ToolError, match="timed out after 3 s") as caught:
            await run_command("yes 'all work and no play'", root, 3.0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    printed = int(str(caught.value).rsplit("; ", 1)[1].split(" in all")[0])
    print(f"bash yes for 3 s: printed {printed / 1e6:.0f} MB, peak {peak / 1024:.0f} KiB kept")
    assert printed > 10 * 1024 * 1024  # it really printed a lot ...
    assert peak < 4 * (BASH_HEAD_BYTES + BASH_TAIL_BYTES) + 1024 * 1024  # ... and little was kept
    assert children() == set()


async def test_bash_runs_in_the_root_and_stops_a_child_holding_its_output(root):
    from codetether_magics.agent.tools.shell import run_command

    assert (await run_command("pwd", root, 10)).output.splitlines()[0] == str(root.resolve())
    started = time.monotonic()
    result = await run_command("sleep 60 & echo started", root, 30)
    assert "started" in result.output and time.monotonic() - started < 3.0
    assert children() == set()
    started = time.monotonic()  # a holder in a session of its own is out of reach of the group kill
    result = await run_command("setsid sleep 5 & echo detached", root, 30)
    assert "detached" in result.output and time.monotonic() - started < 4.0


async def test_bash_cancelled_while_it_starts_leaves_no_child(root):
    from codetether_magics.agent.tools.shell import run_command

    tries, alive = 20, []
    for n in range(tries):
        task = asyncio.ensure_future(run_command(f"sleep 30 & echo $! > child-{n}.pid; wait", root, 30))
        for _ in range(n % 4):  # cancel at different points of the start
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    await asyncio.sleep(0.5)
    for pid_file in root.glob("child-*.pid"):
        text = pid_file.read_text().strip()
        if text and Path(f"/proc/{text}/stat").exists() and Path(f"/proc/{text}/stat").read_text().split()[2] != "Z":
            alive.append(int(text))
    print(f"bash cancelled while starting: {tries} tries, {len(alive)} children left running")
    assert alive == []


async def test_python_code_printing_a_lot_keeps_its_head_and_tail_only():
    tracemalloc.start()
    try:
        report = await run_code("for i in range(200_000):\n    print('line', i, 'x' * 50)\n", {})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    print(f"python printed ~12 MB: peak {peak / 1024:.0f} KiB, kept {len(report.stdout)} characters")
    assert report.stdout.startswith("line 0 ") and "line 199999 " in report.stdout
    assert "characters cut" in report.stdout and len(report.stdout) <= OUTPUT_LIMIT
    assert peak < 2 * 1024 * 1024

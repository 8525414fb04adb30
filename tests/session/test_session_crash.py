"""Crash safety and concurrent writers, with real processes (docs/design.md, "Saves")."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from codetether_magics import Message, Session

ROOT = Path(__file__).resolve().parents[2]


def _spawn(*args: str, data_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "CODETETHER_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "tests.support.session_writer", *args], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_line(proc: subprocess.Popen, prefix: str) -> str:
    while True:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"child exited: {proc.stderr.read()}")
        if line.startswith(prefix):
            return line


def _kill_while_writing(mode: str, session_id: str, delay: float, data_dir: Path) -> bool:
    """Start a writer child, let it write for ``delay`` seconds, then SIGKILL it mid-save; True when
    the kill landed (the child was still writing, not already gone)."""
    child = _spawn(mode, session_id, data_dir=data_dir)
    _wait_for_line(child, "ready")
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdout.close()
    child.stderr.close()
    return child.returncode == -signal.SIGKILL


async def test_sigkill_during_repeated_saves_never_leaves_a_torn_file(isolated_environment):
    rng = random.Random(20261125)
    session_id = "crash-test"
    seed = await Session.new()
    seed.id = session_id
    for i in range(100):  # ~2 MB, so a save takes long enough to be interrupted
        seed.add_message(Message.user(f"turn {i} " + "p" * 20_000))
    await seed.save()
    path = seed.path
    kills, last_count = 0, 100
    for _ in range(25):
        kills += _kill_while_writing("loop", session_id, rng.uniform(0.0, 0.12), isolated_environment)
        loaded = await Session.load(session_id)  # must never be torn
        count = len(loaded.messages)
        assert count >= last_count
        assert [m.text.split(" ")[1] for m in loaded.messages] == [str(i) for i in range(count)]
        last_count = count
    assert kills == 25 and last_count > 100  # every kill hit a live writer; some saves completed between kills
    assert orjson_ok(path)


def orjson_ok(path: Path) -> bool:
    import orjson

    return isinstance(orjson.loads(path.read_bytes()), dict)


async def test_two_processes_saving_one_session_lose_no_turn(isolated_environment):
    session = await Session.new()
    await session.save()
    turns = 15
    children = [_spawn("race", session.id, name, str(turns), data_dir=isolated_environment)
                for name in ("A", "B")]
    for child in children:
        _wait_for_line(child, "ready")  # both hold the same version of the file
    (isolated_environment / "go").write_text("go")
    outputs = [child.communicate(timeout=60) for child in children]
    for child, (out, err) in zip(children, outputs):
        assert child.returncode == 0, err
        assert out.startswith("conflicts")
    assert sum(int(out.split()[1]) for out, _ in outputs) >= 1  # the loser of the first save was refused
    texts = [m.text for m in (await Session.load(session.id)).messages]
    assert sorted(texts) == sorted(f"{name}-{i}" for name in "AB" for i in range(turns))
    for name in "AB":  # each writer's turns stay in its own order
        assert [t for t in texts if t.startswith(name)] == [f"{name}-{i}" for i in range(turns)]


async def test_sigkill_during_agent_turns_leaves_whole_steps(isolated_environment):
    """One save per step writes the model's tool calls and all their results together: a kill at any
    moment leaves a file where every tool call has its result, and no turn seen before is lost."""
    rng = random.Random(20261201)
    session_id = "turns-crash"
    last_count = 0
    for _ in range(12):
        _kill_while_writing("turns", session_id, rng.uniform(0.0, 0.3), isolated_environment)
        loaded = await Session.load(session_id)  # never torn
        messages = loaded.messages
        assert len(messages) >= last_count
        last_count = len(messages)
        calls = [part.id for m in messages if m.role == "assistant" for part in m.tool_calls]
        results = [part.tool_call_id for m in messages if m.role == "tool" for part in m.content]
        assert calls == results  # whole steps only: no call without its result
        assert [use.id for use in loaded.tool_uses] == results
    assert last_count > 0

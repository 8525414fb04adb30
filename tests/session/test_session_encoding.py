"""The batched encoder writes exactly the bytes of one ``orjson.dumps(session.model_dump())``."""

from __future__ import annotations

import asyncio
import sys
import time

import orjson
import pytest

from codetether_magics.messages import Message, TextPart, ToolCallPart, ToolUse
from codetether_magics.session import codec
from codetether_magics.session.session import Session


def session_with(messages: int, tool_uses: int) -> Session:
    data = Session(title="enc").model_dump()
    data["messages"] = [
        {"role": "assistant", "content": [{"type": "text", "text": f"m{i} é \"q\" \\", "newer_key": i}]
         if i % 3 == 0 else
         [{"type": "tool_call", "id": f"c{i}", "name": "python", "arguments": "{}"}],
         "from_a_newer_writer": {"n": i}}
        for i in range(messages)
    ]
    data["tool_uses"] = [{"id": f"c{i}", "name": "python", "input": {"code": "1"}, "output": "1",
                          "success": True, "status": "succeeded"} for i in range(tool_uses)]
    data["metadata"]["unknown_nested"] = {"messages": [], "tool_uses": []}
    data["a_top_level_extra"] = [1, 2, 3]
    return Session.model_validate(data)


@pytest.mark.parametrize("count", [0, 1, codec._BATCH - 1, codec._BATCH, codec._BATCH + 1, 3 * codec._BATCH + 5])
def test_same_bytes_as_one_dump_at_every_batch_boundary(count):
    session = session_with(count, count // 2)
    expected = orjson.dumps(session.model_dump())
    assert codec.encode_session(session) == expected
    assert b"".join(bytes(part) for part in codec.encode_session_parts(session)) == expected
    assert list(orjson.loads(expected)) == ["id", "title", "created_at", "updated_at", "metadata", "agent",
                                           "messages", "tool_uses", "usage", "a_top_level_extra"]


async def _longest_stall(work) -> float:
    """The longest the event loop went without turning while ``work()`` ran in a worker thread."""
    gaps: list[float] = []
    done = asyncio.Event()

    async def tick() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = asyncio.ensure_future(tick())
    await asyncio.sleep(0.01)
    await asyncio.to_thread(work)
    done.set()
    await ticker
    return max(gaps)


async def test_encoding_a_big_session_in_a_thread_leaves_the_event_loop_free():
    """At ~30 MB one dump holds the GIL for tens of ms; batches let the loop run in between."""
    session = Session(title="big")
    text = "x" * 1_000
    session.messages = [Message(role="user", content=[TextPart(text=f"{i}.{j} {text}") for j in range(4)])
                        for i in range(8_000)]  # ~32 MB
    # A short switch interval so the stall between batches (one GIL hand-over) is small beside
    # the stall of one long native call, whatever the machine's load.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    try:
        one_dump = min([await _longest_stall(lambda: orjson.dumps(session.model_dump())) for _ in range(3)])
        batched = min([await _longest_stall(lambda: codec.encode_session_parts(session)) for _ in range(3)])
    finally:
        sys.setswitchinterval(interval)
    assert batched < one_dump / 2, (batched, one_dump)

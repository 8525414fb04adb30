"""A child process for the crash and two-writer tests.

    python -m tests.support.session_writer loop ID          # save forever, printing "saved N"
    python -m tests.support.session_writer race ID NAME N   # load, print "ready", wait for <data dir>/go,
                                                            # then N turns, reloading on conflict
    python -m tests.support.session_writer turns ID         # agent turns forever (3 tool calls in a step,
                                                            # then an answer) against a scripted server

CODETETHER_DATA_DIR comes from the environment.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from codetether_magics import Message, Session
from codetether_magics.errors import SessionConflictError, SessionNotFoundError

PADDING = "p" * 20_000


async def _load_or_new(session_id: str) -> Session:
    try:
        return await Session.load(session_id)
    except SessionNotFoundError:
        session = await Session.new()
        session.id = session_id
        return session


async def save_forever(session_id: str) -> None:
    session = await _load_or_new(session_id)
    print("ready", len(session.messages), flush=True)
    while True:
        session.add_message(Message.user(f"turn {len(session.messages)} {PADDING}"))
        await session.save()
        print("saved", len(session.messages), flush=True)


async def race(session_id: str, name: str, turns: int) -> None:
    # Both writers load the same version before either saves, so the second first save must conflict.
    session = await Session.load(session_id)
    print("ready", flush=True)
    go = os.path.join(os.environ["CODETETHER_DATA_DIR"], "go")
    while not os.path.exists(go):
        time.sleep(0.005)
    conflicts = 0
    for turn in range(turns):
        while True:
            session.add_message(Message.user(f"{name}-{turn}"))
            try:
                await session.save()
                break
            except SessionConflictError:
                conflicts += 1
                session = await Session.load(session_id)  # reload, then repeat the step
    print("conflicts", conflicts, flush=True)


async def turns_forever(session_id: str) -> None:
    from codetether_magics.agent.loop import run_prompt
    from codetether_magics.agent.tools.base import Tool
    from codetether_magics.providers.openai import OpenAIProvider
    from codetether_magics.testing import FakeRegistry, ScriptedModelServer, ToolCallStep, Turn

    async def noop(args: dict) -> str:
        await asyncio.sleep(0.002)
        return "done " + PADDING[:2_000]

    tool = Tool("noop", "does nothing", {"type": "object", "properties": {}}, noop, read_only=True)
    session = await _load_or_new(session_id)
    session.title = "turns"
    with ScriptedModelServer() as server:
        registry = FakeRegistry(OpenAIProvider("openai", "sk-test-turns", server.openai_base_url), "openai/m")
        for turn in range(10_000):
            calls = Turn([ToolCallStep("noop", {}, f"call_{turn}_{i}") for i in range(3)])
            server.enqueue(calls, Turn.text(f"answer {turn}"))
            await run_prompt(session, f"turn {turn} {PADDING * 5}", [], None, registry, tools=[tool])
            print("ready" if turn == 0 else "turned", turn, flush=True)


def main(argv: list[str]) -> None:
    if argv[0] == "loop":
        asyncio.run(save_forever(argv[1]))
    elif argv[0] == "turns":
        asyncio.run(turns_forever(argv[1]))
    else:
        asyncio.run(race(argv[1], argv[2], int(argv[3])))


if __name__ == "__main__":
    main(sys.argv[1:])

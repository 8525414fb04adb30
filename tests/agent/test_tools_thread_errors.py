"""A threaded tool that ends with an error (its time limit, an exception) leaves no thread behind
when the error reaches the caller: the kernel's thread count does not creep up call by call."""

from __future__ import annotations

import threading
import time

import pytest

from codetether_magics.agent.tools import common
from codetether_magics.errors import ToolError


def endless(args: dict) -> str:
    while True:
        common.checkpoint()
        time.sleep(0.005)


def failing(args: dict) -> str:
    raise ToolError("broken on purpose")


@pytest.mark.parametrize("work, limit", [(endless, 0.03), (failing, 5.0)], ids=["time-limit", "exception"])
async def test_the_thread_has_ended_when_the_error_arrives(work, limit):
    tries, left = 25, 0
    for _ in range(tries):
        before = threading.active_count()
        with pytest.raises(ToolError):
            await common.run_in_thread("work", work, {}, limit=limit)
        left += threading.active_count() > before
    print(f"\n{work.__name__}: {tries} tries, {left} threads alive after the error")
    assert left == 0

"""The context budget: the request a long notebook session sends, against sending everything.

Sessions of 10, 100 and 1,000 turns (each a question with one ~40 kB image and a ~1 kB
answer) are built in memory. For each, the request of the next turn is derived twice:

Each time is the best of 3.

1. "first": no summary stored yet, so past the budget the earlier turns are compacted (the
   summary call goes to an in-process provider that answers at once: this measures our
   cost, not a model's).
2. "next": the following turn, reusing the stored summary (the cost paid at every turn).

Both are compared with sending the whole transcript (``list(session.messages)``, what the
loop did before): estimated tokens, the Chat Completions body in bytes, and the time to build
the request and encode its body (the encoding is paid by both, so it is in both times). The
derived request must stay within 90% of gpt-4o's 128,000-token window and stay flat from
100 to 1,000 turns while the transcript grows tenfold.

    python -m benchmarks context [--quick]
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from typing import Any, AsyncIterator

from codetether_magics.agent.context import BUDGET_SHARE, RequestBudget, estimate_request
from codetether_magics.events import EventSink
from codetether_magics.providers.base import Finish, ModelRequest, TextDelta
from codetether_magics.providers.openai import OpenAIProvider
from codetether_magics.session.session import Session
from codetether_magics.messages import ImagePart, Message, TextPart

WINDOW = 128_000  # gpt-4o
BUILD_TARGET_MS = 50.0  # deriving the next request at 1,000 turns
FLAT_TARGET = 1.25
REPEATS = 3  # best of  # derived tokens at 1,000 turns / at 100 turns
SYSTEM = "You are a data-science assistant working in a Jupyter notebook."
QUESTION = ("Why does the residual plot above fan out as the fitted values grow, and what should I change in "
            "the model to fix it? Please look at the figure and the fitted coefficients. ") * 3
ANSWER = ("The spread of the residuals grows with the fitted value: the variance is not constant. Try a log "
          "transform of the target, or weighted least squares with weights 1/fitted^2, then plot again. ") * 5


class InstantSummaries:
    """A provider that answers every request with a short summary at once."""

    name = "bench"

    async def stream(self, request: ModelRequest) -> AsyncIterator[Any]:
        yield TextDelta("The user is fixing heteroscedastic residuals; log transform and WLS were proposed.")
        yield Finish("stop")


def _session(turns: int, image: str) -> Session:
    session = Session()
    session.metadata.model = "openai/gpt-4o"
    for i in range(turns):
        session.messages.append(Message(role="user", content=[TextPart(text=f"{i}: {QUESTION}"),
                                                              ImagePart(url=image, mime_type="image/png")]))
        session.messages.append(Message.assistant(f"{i}: {ANSWER}"))
    session.messages.append(Message.user("And now?"))
    return session


def _request(messages: list[Message]) -> ModelRequest:
    return ModelRequest(model="gpt-4o", messages=messages, system=SYSTEM)


def _body_bytes(provider: OpenAIProvider, request: ModelRequest) -> int:
    return len(json.dumps(provider._request_body(request)).encode())


async def _derive(session: Session, provider: OpenAIProvider) -> tuple[ModelRequest, float]:
    """The derived request and the time to derive it and encode its wire body."""
    budget = RequestBudget(session, InstantSummaries(), "gpt-4o", window=WINDOW, system=SYSTEM, tools=[],
                           sink=EventSink(None))
    started = time.perf_counter()
    derived = await budget.derive(session.messages)
    request = _request(derived.messages)
    json.dumps(provider._request_body(request))
    return request, (time.perf_counter() - started) * 1000


def _everything(session: Session, provider: OpenAIProvider) -> tuple[ModelRequest, float]:
    started = time.perf_counter()
    request = _request(list(session.messages))
    json.dumps(provider._request_body(request))
    return request, (time.perf_counter() - started) * 1000


async def _measure(quick: bool) -> list[dict[str, Any]]:
    image = "data:image/png;base64," + base64.b64encode(os.urandom(30_000)).decode()
    provider = OpenAIProvider("openai", "sk-bench", "http://127.0.0.1:9/v1")
    budget = int(WINDOW * BUDGET_SHARE)
    rows: list[dict[str, Any]] = []
    derived_tokens: dict[int, int] = {}
    for turns in ((10, 100) if quick else (10, 100, 1000)):
        session = _session(turns, image)
        everything, all_ms = min((_everything(session, provider) for _ in range(REPEATS)), key=lambda r: r[1])
        first_ms = float("inf")
        for _ in range(REPEATS):
            session.__pydantic_extra__.pop("context_budget", None)  # no summary stored yet
            first, ms = await _derive(session, provider)
            first_ms = min(first_ms, ms)
        session.messages.append(Message.assistant("Try the log transform."))
        session.messages.append(Message.user("Done: better?"))
        nxt, next_ms = min([await _derive(session, provider) for _ in range(REPEATS)], key=lambda r: r[1])
        tokens, all_tokens = estimate_request(nxt), estimate_request(everything)
        derived_tokens[turns] = tokens
        rows.append({"benchmark": f"request tokens, next turn of {turns} turns with images",
                     "ours": f"{tokens:,}", "baseline": f"{all_tokens:,} (everything)",
                     "ratio": round(tokens / all_tokens, 3), "target": f"≤ {budget:,}", "ok": tokens <= budget})
        rows.append({"benchmark": f"request body, next turn of {turns} turns",
                     "ours": f"{_body_bytes(provider, nxt) / 1e6:.2f} MB",
                     "baseline": f"{_body_bytes(provider, everything) / 1e6:.2f} MB",
                     "ratio": round(_body_bytes(provider, nxt) / _body_bytes(provider, everything), 3),
                     "target": "(info)", "ok": None})
        rows.append({"benchmark": f"build + encode the request, {turns} turns: first (compacts) / next",
                     "ours": f"{first_ms:.1f} / {next_ms:.1f} ms", "baseline": f"{all_ms:.1f} ms (everything)",
                     "ratio": round(next_ms / max(all_ms, 1e-3), 2),
                     "target": f"next ≤ {BUILD_TARGET_MS:.0f} ms", "ok": next_ms <= BUILD_TARGET_MS})
        assert estimate_request(first) <= budget
    if 1000 in derived_tokens:
        flat = derived_tokens[1000] / derived_tokens[100]
        rows.append({"benchmark": "derived request, 1,000 turns / 100 turns (transcript 10x)",
                     "ours": round(flat, 2), "baseline": "10x (everything)", "ratio": round(flat / 10, 3),
                     "target": f"≤ {FLAT_TARGET}", "ok": flat <= FLAT_TARGET})
    return rows


def run(quick: bool = False) -> list[dict[str, Any]]:
    return asyncio.run(_measure(quick))

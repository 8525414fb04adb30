"""Running the tool calls of one step: approval, heartbeats, capped results, audit records.

Consecutive read-only calls of a step run concurrently (a model that asks for five files at
once waits for the slowest, not for the sum); a call that needs approval waits for the ones
before it and runs alone, so approvals are asked one at a time, in order, and a read after a
write sees the write. Whatever the finishing order, results enter the transcript and
``tool_call_complete`` events are emitted in call order, and a failing call does not stop the
others.

For each call: ``tool_call_start``; for a tool that changes things an
``approval_request`` and the approver's answer (no approver means refused); the
handler, with a ``tool_heartbeat`` every ``heartbeat_interval`` seconds while it runs;
then the result goes into the transcript (capped to ``TOOL_OUTPUT_CAP`` bytes for the
model), a ``ToolUse`` record and ``tool_call_complete``. The loop saves once after the
step's calls, not after each one (a save rewrites the whole transcript).

How each call ended ("succeeded", "failed", or "denied" when it was refused and never ran)
is data: ``ToolResult.status``, the ``status`` key of the ``ToolUse`` record and the
``status`` of ``tool_call_complete``. Nobody needs to recognise a refusal by its wording.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from typing import Any

from ..caps import ARGUMENTS_CAP, OUTPUT_CAP, cap_text, cap_tool_output
from ..errors import ToolError
from ..events import EventSink, ApprovalRequestEvent, ToolCallCompleteEvent, ToolCallStartEvent, ToolHeartbeatEvent
from ..messages import ImagePart, Message, ToolCallPart, ToolResultPart, ToolUse
from .tools.base import ApprovalRequest, Approver, Tool, ToolResult

__all__ = ["INTERRUPTED_RESULT", "ToolRunner", "parse_arguments"]

log = logging.getLogger(__name__)

INTERRUPTED_RESULT = "Not completed: the user interrupted the turn."


def parse_arguments(raw: str) -> dict[str, Any]:
    """The call's JSON arguments as a dict; a ``ToolError`` the model can act on otherwise."""
    try:
        value = json.loads(raw or "{}")
    except ValueError as exc:
        raise ToolError(
            f"The arguments were not valid JSON ({exc}); they may have been cut off. "
            "Call the tool again with complete, shorter arguments."
        ) from None
    if not isinstance(value, dict):
        raise ToolError(f"The arguments must be a JSON object, not {type(value).__name__}.")
    return value


class ToolRunner:
    def __init__(
        self,
        session: Any,
        sink: EventSink,
        tools: list[Tool],
        approver: Approver | None,
        *,
        heartbeat_interval: float,
    ) -> None:
        self._session = session
        self._sink = sink
        self._tools = {tool.name: tool for tool in tools}
        self._approver = approver
        self._heartbeat = heartbeat_interval
        self._recorded: set[str] = set()  # call ids whose result is in the transcript

    async def run_calls(self, calls: list[ToolCallPart], step: int) -> None:
        """Run ``calls`` (runs of read-only ones together); on cancellation every call left gets an
        'interrupted' result."""
        self._recorded = set()
        try:
            for batch in self._batches(calls):
                if len(batch) == 1:
                    await self._run_one(batch[0], step)
                else:
                    await self._run_together(batch, step)
        except asyncio.CancelledError:
            for call in calls:
                if call.id not in self._recorded:
                    self._record(call, {}, ToolResult(INTERRUPTED_RESULT, success=False))
            raise

    def _batches(self, calls: list[ToolCallPart]) -> list[list[ToolCallPart]]:
        """``calls`` in order, consecutive read-only ones grouped; each other call alone."""
        batches: list[list[ToolCallPart]] = []
        previous_read_only = False
        for call in calls:
            tool = self._tools.get(call.name)
            read_only = tool is not None and tool.read_only
            if read_only and previous_read_only:
                batches[-1].append(call)
            else:
                batches.append([call])
            previous_read_only = read_only
        return batches

    async def _run_together(self, calls: list[ToolCallPart], step: int) -> None:
        """Start every call, then finish them in call order as their results arrive."""
        for call in calls:
            await self._announce(call)
        tasks = [asyncio.ensure_future(self._outcome(call, step)) for call in calls]
        try:
            for call, task in zip(calls, tasks):
                args, result, started = await task
                await self._finish(call, step, args, result, started)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _run_one(self, call: ToolCallPart, step: int) -> None:
        await self._announce(call)
        args, result, started = await self._outcome(call, step)
        await self._finish(call, step, args, result, started)

    async def _announce(self, call: ToolCallPart) -> None:
        await self._sink.emit(
            ToolCallStartEvent(tool_call_id=call.id, name=call.name, arguments=cap_text(call.arguments, ARGUMENTS_CAP))
        )

    async def _outcome(self, call: ToolCallPart, step: int) -> tuple[dict[str, Any], ToolResult, float]:
        """Parse, ask when needed and run ``call``: (arguments, result, start time). Never raises but on
        cancellation: a tool's failure is its result."""
        started = time.perf_counter()
        args: dict[str, Any] = {}
        try:
            args = parse_arguments(call.arguments)
            self._session.publish("tool.request",
                                  {"request_id": call.id, "tool_name": call.name, "arguments": args, "step": step})
            result = await self._execute(call, args)
        except ToolError as exc:
            result = ToolResult(output=f"Error: {exc}", success=False)
        return args, result, started

    async def _finish(self, call: ToolCallPart, step: int, args: dict[str, Any], result: ToolResult,
                      started: float) -> None:
        output = cap_tool_output(result.output)
        self._record(call, args, ToolResult(output, result.success, result.status, result.images))
        self._session.publish("tool.response", {"request_id": call.id, "tool_name": call.name, "output": output,
                                                "success": result.success, "step": step})
        await self._sink.emit(
            ToolCallCompleteEvent(
                tool_call_id=call.id,
                name=call.name,
                output=cap_text(result.output, OUTPUT_CAP),
                success=result.success,
                duration_ms=int((time.perf_counter() - started) * 1000),
                status=result.status,
            )
        )

    async def _execute(self, call: ToolCallPart, args: dict[str, Any]) -> ToolResult:
        tool = self._tools.get(call.name)
        if tool is None:
            available = ", ".join(sorted(self._tools)) or "none"
            raise ToolError(f"Unknown tool '{call.name}'. Available tools: {available}.")
        if not tool.read_only:
            refusal = await self._ask_approval(call, args)
            if refusal is not None:
                return ToolResult(output=refusal, success=False, status="denied")
        return await self._with_heartbeat(call, tool, args)

    async def _ask_approval(self, call: ToolCallPart, args: dict[str, Any]) -> str | None:
        """None when approved, else the message the model gets instead of a result."""
        await self._sink.emit(
            ApprovalRequestEvent(
                tool_call_id=call.id,
                name=call.name,
                arguments=cap_text(call.arguments, ARGUMENTS_CAP),
                reason=f"`{call.name}` can change files or run commands",
            )
        )
        refused = (
            f"The user did not approve this `{call.name}` call, so it was not run. "
            "Do not retry it unchanged; explain what you wanted to do or ask the user."
        )
        if self._approver is None:
            return refused + " (No approver is configured for this session.)"
        try:
            approved = self._approver(ApprovalRequest(tool_call_id=call.id, name=call.name, arguments=args))
            if inspect.isawaitable(approved):  # the contract is async; a plain function is accepted too
                approved = await approved
        except ToolError as exc:
            return f"{refused} ({exc})"
        return None if approved is True else refused

    async def _with_heartbeat(self, call: ToolCallPart, tool: Tool, args: dict[str, Any]) -> ToolResult:
        started = time.perf_counter()
        task = asyncio.ensure_future(tool.handler(args))
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self._heartbeat)
                if done:
                    break
                await self._sink.emit(
                    ToolHeartbeatEvent(tool_call_id=call.id, name=call.name,
                                       elapsed_secs=round(time.perf_counter() - started, 3))
                )
        except asyncio.CancelledError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise
        return _as_result(call.name, task)

    def _record(self, call: ToolCallPart, args: dict[str, Any], result: ToolResult) -> None:
        self._recorded.add(call.id)
        content: list[Any] = [ToolResultPart(tool_call_id=call.id, content=result.output)]
        # Images right after their result: each protocol's mapper attaches them to that result.
        content += [ImagePart(url=image.data_url, mime_type=image.resolved_mime_type()) for image in result.images]
        self._session.add_message(Message(role="tool", content=content))
        self._session.tool_uses.append(ToolUse(id=call.id, name=call.name, input=args, output=result.output,
                                               success=result.success, status=result.status))


def _as_result(name: str, task: asyncio.Future) -> ToolResult:
    """The handler's outcome as a ``ToolResult``; an unexpected exception becomes an error the model sees."""
    try:
        value = task.result()
    except ToolError as exc:
        return ToolResult(output=f"Error: {exc}", success=False)
    except Exception as exc:  # noqa: BLE001 - a tool bug is reported to the model and logged, not fatal
        log.exception("tool %s failed", name)
        return ToolResult(output=f"Error: the {name} tool failed: {type(exc).__name__}: {exc}", success=False)
    if isinstance(value, str):
        return ToolResult(output=value)
    if isinstance(value, ToolResult):
        return value
    return ToolResult(output=f"Error: the {name} tool returned {type(value).__name__}, not text.", success=False)

"""Who approves a tool that changes things, when the agent runs in a notebook.

Tools marked ``read_only=False`` (``python``, ``bash``, file edits) run only when the user
allowed them: ``--allow python,bash`` on the cell or ``%config CodeTether.auto_approve = True``.
Otherwise a frontend that can answer (JupyterLab, Notebook 7, VS Code) is asked through
the view's Approve / Deny buttons. nbclient, nbval and ``jupyter execute`` leave nobody to
ask: the call is refused and the model is told how the user can allow it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable, Literal, Mapping

from ..agent.tooling import ApprovalRequest, Approver, Tool

__all__ = [
    "ALL_TOOLS",
    "ApprovalPolicy",
    "Decision",
    "decide",
    "frontend_can_answer",
    "guard_tools",
    "make_approver",
    "parse_allow",
    "refusal_message",
]

Decision = Literal["allow", "ask", "refuse"]
ALL_TOOLS = "all"
DEFAULT_APPROVAL_TIMEOUT = 300.0


def frontend_can_answer(user_ns: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> bool:
    """True in JupyterLab / Notebook 7 / VS Code, whose kernels know their notebook."""
    environ = os.environ if environ is None else environ
    return bool(
        environ.get("JPY_SESSION_NAME")
        or user_ns.get("__session__")
        or user_ns.get("__vsc_ipynb_file__")
    )


@dataclass(frozen=True)
class ApprovalPolicy:
    allowed: frozenset[str] = frozenset()  # tool names, or {"all"}
    auto_approve: bool = False
    can_ask: bool = False
    timeout: float = DEFAULT_APPROVAL_TIMEOUT


def decide(tool_name: str, policy: ApprovalPolicy) -> Decision:
    if policy.auto_approve or tool_name in policy.allowed or ALL_TOOLS in policy.allowed:
        return "allow"
    return "ask" if policy.can_ask else "refuse"


def refusal_message(tool_name: str) -> str:
    return (
        f"tool '{tool_name}' needs approval; re-run the cell with --allow {tool_name} "
        "(or set %config CodeTether.auto_approve = True)"
    )


def parse_allow(values: Iterable[str], available: Iterable[str]) -> frozenset[str]:
    """``["python,bash", "read"]`` -> names; raises ValueError naming an unknown tool."""
    known = set(available)
    names = {name.strip() for value in values for name in value.split(",") if name.strip()}
    unknown = sorted(names - known - {ALL_TOOLS})
    if unknown:
        raise ValueError(
            f"--allow: unknown tool {', '.join(map(repr, unknown))}. "
            f"Known tools: {', '.join(sorted(known))}, or {ALL_TOOLS}"
        )
    return frozenset(names)


def guard_tools(tools: Iterable[Tool], policy: ApprovalPolicy) -> list[Tool]:
    """Replace the handler of each tool that would be refused by one that explains why.

    The refused tool is marked read-only so the loop does not ask an approver about it:
    calling it runs nothing and the model reads the reason as the tool's error.
    """
    guarded = []
    for tool in tools:
        if not tool.read_only and decide(tool.name, policy) == "refuse":
            tool = dataclasses.replace(tool, handler=_refuser(tool.name), read_only=True)
        guarded.append(tool)
    return guarded


def _refuser(tool_name: str) -> Callable[[dict[str, Any]], Awaitable[Any]]:
    async def refuse(_arguments: dict[str, Any]) -> Any:
        from ..errors import ToolError

        raise ToolError(refusal_message(tool_name))

    return refuse


def make_approver(
    policy: ApprovalPolicy,
    ask: Callable[[ApprovalRequest], Awaitable[bool]] | None,
) -> Approver:
    """The approver the loop calls for tools that change things.

    ``ask`` shows Approve / Deny (``LiveView.ask_approval``); no answer within
    ``policy.timeout`` seconds counts as Deny.
    """

    async def approve(request: ApprovalRequest) -> bool:
        decision = decide(request.name, policy)
        if decision == "allow":
            return True
        if decision == "refuse" or ask is None:
            return False
        try:
            return bool(await asyncio.wait_for(ask(request), policy.timeout))
        except asyncio.TimeoutError:
            return False

    return approve

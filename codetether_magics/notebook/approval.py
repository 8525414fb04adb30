"""Who approves a tool that changes things, when the agent runs in a notebook.

Tools marked ``read_only=False`` (``python``, ``bash``, file edits, every MCP tool) run only when
the user allowed them: ``--allow python,bash`` on the cell (``--allow mcp`` or ``mcp__<server>``
for MCP tools by group) or ``%config CodeTether.auto_approve = True``.
Otherwise a frontend that can answer (JupyterLab, Notebook 7, VS Code) is asked through
the view's Approve / Deny buttons. nbclient, nbval and ``jupyter execute`` leave nobody to
ask: the call is refused and the model is told how the user can allow it (the approver
raises ``ToolError`` with that reason, which the loop passes on to the model).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable, Literal, Mapping

from ..agent.tools.base import ApprovalRequest, Approver
from ..errors import ToolError

__all__ = [
    "ALL_TOOLS",
    "MCP_GROUP",
    "ApprovalPolicy",
    "Decision",
    "decide",
    "frontend_can_answer",
    "make_approver",
    "parse_allow",
    "refusal_message",
]

Decision = Literal["allow", "ask", "refuse"]
ALL_TOOLS = "all"
MCP_GROUP = "mcp"  # --allow mcp, --allow mcp__<server>
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
    if policy.auto_approve or ALL_TOOLS in policy.allowed or _allowed_by_name(tool_name, policy.allowed):
        return "allow"
    return "ask" if policy.can_ask else "refuse"


def _allowed_by_name(tool_name: str, allowed: frozenset[str]) -> bool:
    """The name itself, or an MCP group: ``mcp`` (every MCP tool) or ``mcp__<server>`` (one server's)."""
    if tool_name in allowed:
        return True
    if not tool_name.startswith(MCP_GROUP + "__"):
        return False
    server = tool_name.split("__")[1]
    return MCP_GROUP in allowed or f"{MCP_GROUP}__{server}" in allowed


def refusal_message(tool_name: str) -> str:
    also = ""
    if tool_name.startswith(MCP_GROUP + "__"):
        server = tool_name.split("__")[1]
        also = (f", --allow {MCP_GROUP}__{server} for every tool of that MCP server, "
                f"--allow {MCP_GROUP} for all MCP tools")
    return (
        f"tool '{tool_name}' needs approval; re-run the cell with --allow {tool_name}{also} "
        "(or set %config CodeTether.auto_approve = True)"
    )


def parse_allow(values: Iterable[str], available: Iterable[str], mcp_servers: Iterable[str] = ()) -> frozenset[str]:
    """``["python,bash", "read"]`` -> names; raises ValueError naming an unknown tool.

    ``mcp`` and ``mcp__<server>`` (for a configured server, running or not) allow MCP tools by group;
    ``mcp__<server>__<tool>`` of a configured server is accepted even while that server is down.
    """
    known = set(available)
    groups = {f"{MCP_GROUP}__{server}" for server in mcp_servers}
    if groups:
        groups.add(MCP_GROUP)
    names = {name.strip() for value in values for name in value.split(",") if name.strip()}
    # A tool of a configured server that is not running (yet, or any more) is still a valid name.
    unknown = sorted(name for name in names - known - groups - {ALL_TOOLS}
                     if "__".join(name.split("__")[:2]) not in groups or name.count("__") < 2)
    if unknown:
        raise ValueError(
            f"--allow: unknown tool {', '.join(map(repr, unknown))}. "
            f"Known tools: {', '.join(sorted(known))}{_mcp_hint(unknown, groups)}, or {ALL_TOOLS}"
        )
    return frozenset(names)


def _mcp_hint(unknown: list[str], groups: set[str]) -> str:
    if groups:
        return f", the MCP groups {', '.join(sorted(groups))}"
    if any(name == MCP_GROUP or name.startswith(MCP_GROUP + "__") for name in unknown):
        return "; MCP names need an mcpServers config (none was found)"
    return ""


def make_approver(
    policy: ApprovalPolicy,
    ask: Callable[[ApprovalRequest], Awaitable[bool]] | None,
) -> Approver:
    """The approver the loop calls for tools that change things.

    ``ask`` shows Approve / Deny (``LiveView.ask_approval``). A refusal that the user did
    not make (nobody to ask, no answer in time) raises ``ToolError``: the loop tells the
    model that reason, so it can tell the user how to allow the tool.
    """

    async def approve(request: ApprovalRequest) -> bool:
        decision = decide(request.name, policy)
        if decision == "allow":
            return True
        if decision == "refuse" or ask is None:
            raise ToolError(refusal_message(request.name))
        try:
            return bool(await asyncio.wait_for(ask(request), policy.timeout))
        except asyncio.TimeoutError:
            raise ToolError(f"nobody answered the approval request within {policy.timeout:g} s") from None

    return approve

"""The default system prompt of the agent loop (a caller's ``system=`` replaces it)."""

from __future__ import annotations

from .tools.base import Tool

__all__ = ["default_system_prompt"]


def default_system_prompt(directory: str, tools: list[Tool]) -> str:
    names = ", ".join(tool.name for tool in tools) or "none"
    return (
        "You are CodeTether, a coding agent working for a user inside a Jupyter notebook.\n"
        f"Working directory: {directory}\n"
        f"Tools: {names}. File tools only reach paths inside the working directory. "
        "Tools that change files or run commands need the user's approval; when a call is refused, "
        "do not repeat it unchanged.\n"
        "Answer in Markdown. Be concise and concrete; show code when it helps."
    )

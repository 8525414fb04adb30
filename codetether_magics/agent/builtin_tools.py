"""Short import path for the built-in tools: ``from codetether_magics.agent.builtin_tools import builtin_tools``."""

from .tools import BASH_TIMEOUT, TOOL_OUTPUT_CAP, builtin_tools, cap_tool_output

__all__ = ["BASH_TIMEOUT", "TOOL_OUTPUT_CAP", "builtin_tools", "cap_tool_output"]

"""Model Context Protocol servers as agent tools (stdio and streamable HTTP), through the official SDK.

``config`` reads the ``mcpServers`` file, ``manager`` starts servers once and offers their tools
as ``mcp__<server>__<tool>``; ``connection`` is the only module that imports the ``mcp`` SDK, and
only ``McpManager.start()`` imports it, so a process with no MCP config never pays for it.
"""

from .config import CONFIG_ENV, HttpServer, McpConfig, StdioServer, find_config, load_config
from .manager import McpManager, ServerStatus

__all__ = ["CONFIG_ENV", "HttpServer", "McpConfig", "McpManager", "ServerStatus", "StdioServer", "find_config",
           "load_config"]

"""Which MCP servers to run: the ``{"mcpServers": {NAME: {...}}}`` file Claude Desktop, Cursor and VS Code share.

    {"mcpServers": {
        "db":   {"command": "uvx", "args": ["mcp-server-sqlite", "--db-path", "x.db"], "env": {"TOKEN": "${DB_TOKEN}"}},
        "docs": {"url": "https://docs.example.com/mcp", "headers": {"Authorization": "Bearer ${DOCS_TOKEN}"}}}}

Looked for in ``$CODETETHER_MCP_CONFIG`` when set, else ``mcp.json`` in the notebook's folder,
else ``~/.config/codetether-agent/mcp.json``. Strings may reference environment variables as
``${VAR}``, ``${VAR:-default}`` or VS Code's ``${env:VAR}``. Every env and header value is a
secret: ``McpConfig.secrets`` lists them so every output, error and log line can be scrubbed.
This module only reads JSON: the ``mcp`` SDK is imported when a server actually starts.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Union

from ...errors import McpConfigError
from ...redaction import add_secret, redact
from .names import server_key

__all__ = [
    "CONFIG_ENV",
    "USER_CONFIG",
    "HttpServer",
    "McpConfig",
    "ServerConfig",
    "StdioServer",
    "find_config",
    "load_config",
    "scrub",
]

CONFIG_ENV = "CODETETHER_MCP_CONFIG"
USER_CONFIG = Path("~/.config/codetether-agent/mcp.json")
MIN_SECRET_LENGTH = 8  # as for keys: shorter values would scrub ordinary words from every output
_VARIABLE = re.compile(r"\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SCHEME = re.compile(r"^(Bearer|Basic|Token|Bot)\s+(.+)$", re.IGNORECASE)


@dataclass(frozen=True)
class StdioServer:
    name: str  # as written in the file
    key: str  # the name in tool names: mcp__<key>__<tool>
    command: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None

    def describe(self) -> str:
        """The command line without the program's folder (a machine's path says little and differs everywhere)."""
        return " ".join([Path(self.command).name or self.command, *self.args])


@dataclass(frozen=True)
class HttpServer:
    name: str
    key: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        return self.url


ServerConfig = Union[StdioServer, HttpServer]


@dataclass(frozen=True)
class McpConfig:
    path: Path | None  # None: no config file anywhere
    servers: tuple[ServerConfig, ...] = ()
    secrets: frozenset[str] = frozenset()

    def server(self, key: str) -> ServerConfig | None:
        return next((s for s in self.servers if s.key == key), None)


def find_config(notebook_folder: Path | None, environ: Mapping[str, str] | None = None) -> Path | None:
    """The config file that applies, or None when there is none (then MCP costs nothing)."""
    environ = os.environ if environ is None else environ
    chosen = environ.get(CONFIG_ENV, "").strip()
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_file():
            raise McpConfigError(f"{CONFIG_ENV} names {path}, which is not a file; fix the path or unset it.")
        return path
    candidates = ([notebook_folder / "mcp.json"] if notebook_folder is not None else []) + [USER_CONFIG.expanduser()]
    return next((path for path in candidates if path.is_file()), None)


def load_config(path: Path | None, environ: Mapping[str, str] | None = None) -> McpConfig:
    """Parse ``path``; a problem raises ``McpConfigError`` naming the file and the entry."""
    if path is None:
        return McpConfig(None)
    environ = os.environ if environ is None else environ
    where = f"MCP config {path}"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise McpConfigError(f"{where}: cannot be read ({exc.strerror or exc}).") from None
    except UnicodeDecodeError:
        raise McpConfigError(f"{where}: is not UTF-8 text.") from None
    except json.JSONDecodeError as exc:
        position = f"line {exc.lineno}, column {exc.colno}"
        raise McpConfigError(f"{where}: is not valid JSON ({position}: {exc.msg}).") from None
    entries = _server_table(data, where)
    secrets: set[str] = set()
    servers: list[ServerConfig] = []
    for name, entry in entries.items():
        server = _server(name, entry, f"{where}: server {name!r}", path.parent, environ, secrets)
        if server is None:
            continue
        clash = next((s for s in servers if s.key == server.key), None)
        if clash is not None:
            raise McpConfigError(f"{where}: servers {clash.name!r} and {name!r} both become 'mcp__{server.key}' in "
                                 "tool names; rename one.")
        servers.append(server)
    for secret in secrets:  # scrubbed from every output, event, error and log line of the process from now on
        add_secret(secret)
    return McpConfig(path, tuple(servers), frozenset(secrets))


def scrub(text: str, secrets: frozenset[str] | set[str]) -> str:
    """``text`` with these secrets (and every other known one) replaced: the package's one redaction rule."""
    return redact(text, extra=secrets)


# -- parsing ----------------------------------------------------------------------


def _server_table(data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise McpConfigError(f'{where}: must be a JSON object like {{"mcpServers": {{"name": {{...}}}}}}.')
    table = data.get("mcpServers", data.get("servers"))  # "servers": VS Code's .vscode/mcp.json
    if table is None:
        raise McpConfigError(f'{where}: has no "mcpServers" object; write {{"mcpServers": {{"name": {{...}}}}}}.')
    if not isinstance(table, dict):
        raise McpConfigError(f'{where}: "mcpServers" must be an object mapping server names to their settings.')
    return table


def _server(name: str, entry: Any, where: str, folder: Path, environ: Mapping[str, str],
            secrets: set[str]) -> ServerConfig | None:
    if not isinstance(entry, dict):
        raise McpConfigError(f"{where}: must be an object with 'command' (stdio) or 'url' (streamable HTTP).")
    if entry.get("disabled") is True:  # Cursor and Cline switch a server off this way
        return None
    key = server_key(name)
    if not key:
        raise McpConfigError(f"{where}: the name needs at least one letter or digit.")
    kind = str(entry.get("type") or entry.get("transport") or "").lower().replace("_", "-")
    if kind == "sse":
        raise McpConfigError(f"{where}: the SSE transport is not supported; use the server's streamable HTTP URL.")
    if kind not in ("", "stdio", "http", "streamable-http", "streamablehttp"):
        raise McpConfigError(f"{where}: unknown type {kind!r}; use 'stdio' (command) or 'http' (url).")
    has_command, has_url = "command" in entry, "url" in entry
    if has_command == has_url:
        raise McpConfigError(f"{where}: needs exactly one of 'command' (a stdio server) or 'url' (streamable HTTP).")
    expand = lambda value, what: _expand(value, f"{where}: {what}", environ)  # noqa: E731
    if has_command:
        return _stdio(name, key, entry, where, folder, expand, secrets)
    return _http(name, key, entry, where, expand, secrets)


def _stdio(name, key, entry, where, folder, expand, secrets) -> StdioServer:
    command = expand(_string(entry["command"], f"{where}: 'command'"), "'command'")
    if not command.strip():
        raise McpConfigError(f"{where}: 'command' is empty; give the program that starts the server.")
    args = entry.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise McpConfigError(f"{where}: 'args' must be a list of strings.")
    env = {k: expand(v, f"env {k!r}") for k, v in _string_map(entry.get("env", {}), f"{where}: 'env'").items()}
    secrets.update(v for v in env.values() if len(v) >= MIN_SECRET_LENGTH)
    cwd = entry.get("cwd")
    if cwd is not None:
        cwd = str(folder / Path(expand(_string(cwd, f"{where}: 'cwd'"), "'cwd'")).expanduser())
    return StdioServer(name, key, command, tuple(expand(a, "'args'") for a in args), env, cwd or str(folder))


def _http(name, key, entry, where, expand, secrets) -> HttpServer:
    url = expand(_string(entry["url"], f"{where}: 'url'"), "'url'")
    if not re.match(r"^https?://[^/\s]+", url):
        raise McpConfigError(f"{where}: 'url' must be an http:// or https:// URL, got {scrub(url, secrets)!r}.")
    headers = {k: expand(v, f"header {k!r}")
               for k, v in _string_map(entry.get("headers", {}), f"{where}: 'headers'").items()}
    for header, value in headers.items():
        if _CONTROL.search(value) or _CONTROL.search(header):
            raise McpConfigError(f"{where}: header {header!r} holds a control character (a line break?); remove it.")
        secrets.update(part for part in _secret_parts(value) if len(part) >= MIN_SECRET_LENGTH)
    return HttpServer(name, key, url, headers)


def _secret_parts(header_value: str) -> list[str]:
    """The value, and the credential after a scheme word ("Bearer abc" -> also "abc")."""
    match = _SCHEME.match(header_value.strip())
    return [header_value, match.group(2)] if match else [header_value]


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise McpConfigError(f"{where} must be a string, not {type(value).__name__}.")
    return value


def _string_map(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise McpConfigError(f"{where} must be an object of string values.")
    return value


def _expand(value: str, where: str, environ: Mapping[str, str]) -> str:
    """Replace ``${VAR}`` / ``${VAR:-default}`` / ``${env:VAR}``; an unset variable without a default is an error."""

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise McpConfigError(f"{where} uses ${{{name}}}, which is not set; export it before starting the kernel "
                             f"or write ${{{name}:-default}}.")

    return _VARIABLE.sub(replace, value)

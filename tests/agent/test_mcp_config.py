"""The mcpServers file: where it is found, what it may say, ${VAR}, and the error for every bad entry."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from codetether_magics.agent.mcp.config import (
    CONFIG_ENV,
    HttpServer,
    StdioServer,
    find_config,
    load_config,
    scrub,
)
from codetether_magics.agent.mcp.names import MAX_TOOL_NAME, server_key, tool_names
from codetether_magics.errors import McpConfigError

VALID_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # what OpenAI and Anthropic both accept


def write(path: Path, data: object) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


# -- where ---------------------------------------------------------------------------


def test_env_variable_wins_then_the_notebook_folder(tmp_path: Path):
    folder = tmp_path / "nb"
    folder.mkdir()
    beside = write(folder / "mcp.json", {"mcpServers": {}})
    chosen = write(tmp_path / "elsewhere.json", {"mcpServers": {}})
    assert find_config(folder, {}) == beside
    assert find_config(folder, {CONFIG_ENV: str(chosen)}) == chosen
    assert find_config(tmp_path / "empty", {CONFIG_ENV: "  "}) is None  # blank means unset


def test_user_config_is_the_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    user = tmp_path / ".config" / "codetether-agent" / "mcp.json"
    user.parent.mkdir(parents=True)
    write(user, {"mcpServers": {}})
    assert find_config(tmp_path / "nowhere", {}) == user


def test_env_variable_naming_a_missing_file_is_an_error(tmp_path: Path):
    with pytest.raises(McpConfigError, match=f"{CONFIG_ENV} names .*missing.json, which is not a file"):
        find_config(tmp_path, {CONFIG_ENV: str(tmp_path / "missing.json")})


# -- what ----------------------------------------------------------------------------


def test_stdio_and_http_servers_with_variables(tmp_path: Path):
    path = write(tmp_path / "mcp.json", {"mcpServers": {
        "db": {"command": "uvx", "args": ["server", "--db", "${DB_FILE}"], "env": {"TOKEN": "${DB_TOKEN}"}},
        "docs": {"type": "http", "url": "https://docs.example.com/${PATH_PART:-mcp}",
                 "headers": {"Authorization": "Bearer ${env:DOCS_TOKEN}"}},
        "off": {"command": "x", "disabled": True},
    }})
    environ = {"DB_FILE": "x.db", "DB_TOKEN": "db-token-123456", "DOCS_TOKEN": "docs-token-abcdef"}
    config = load_config(path, environ)
    db, docs = config.servers
    assert db == StdioServer("db", "db", "uvx", ("server", "--db", "x.db"), {"TOKEN": "db-token-123456"},
                             str(tmp_path))  # relative paths in args work beside the config file
    assert docs == HttpServer("docs", "docs", "https://docs.example.com/mcp",
                              {"Authorization": "Bearer docs-token-abcdef"})
    assert config.secrets == {"db-token-123456", "Bearer docs-token-abcdef", "docs-token-abcdef"}
    assert scrub("token docs-token-abcdef and db-token-123456", config.secrets) == "token [redacted] and [redacted]"


def test_vs_code_servers_key_and_short_env_values_are_not_secrets(tmp_path: Path):
    path = write(tmp_path / "mcp.json", {"servers": {"x": {"command": "srv", "env": {"DEBUG": "1"}}}})
    config = load_config(path, {})
    assert [s.name for s in config.servers] == ["x"]
    assert config.secrets == frozenset()  # "1" would scrub every digit 1 from every output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", r"is not valid JSON \(line 1, column 2"),
        ([], "must be a JSON object"),
        ({"servers_typo": {}}, 'has no "mcpServers" object'),
        ({"mcpServers": []}, '"mcpServers" must be an object'),
        ({"mcpServers": {"a": "python"}}, "server 'a': must be an object with 'command'"),
        ({"mcpServers": {"a": {}}}, "server 'a': needs exactly one of 'command'"),
        ({"mcpServers": {"a": {"command": "x", "url": "http://h"}}}, "server 'a': needs exactly one of"),
        ({"mcpServers": {"a": {"command": ["python"]}}}, "server 'a': 'command' must be a string, not list"),
        ({"mcpServers": {"a": {"command": " "}}}, "server 'a': 'command' is empty"),
        ({"mcpServers": {"a": {"command": "x", "args": "y"}}}, "server 'a': 'args' must be a list of strings"),
        ({"mcpServers": {"a": {"command": "x", "env": {"K": 1}}}}, "server 'a': 'env' must be an object of string"),
        ({"mcpServers": {"a": {"command": "x", "env": {"K": "${NOPE}"}}}},
         r"server 'a': env 'K' uses \$\{NOPE\}, which is not set"),
        ({"mcpServers": {"a": {"url": "ftp://h"}}}, "server 'a': 'url' must be an http:// or https:// URL"),
        ({"mcpServers": {"a": {"type": "sse", "url": "http://h"}}}, "SSE transport is not supported"),
        ({"mcpServers": {"a": {"type": "websocket", "url": "http://h"}}}, "unknown type 'websocket'"),
        ({"mcpServers": {"a": {"url": "http://h", "headers": {"X": "a\r\nInjected: 1"}}}},
         "header 'X' holds a control character"),
        ({"mcpServers": {"!!!": {"command": "x"}}}, "server '!!!': the name needs at least one letter"),
        ({"mcpServers": {"my db": {"command": "x"}, "my_db": {"command": "y"}}},
         "servers 'my db' and 'my_db' both become 'mcp__my_db'"),
    ],
)
def test_bad_config_names_the_file_and_the_entry(tmp_path: Path, content: object, message: str):
    path = write(tmp_path / "mcp.json", content)
    with pytest.raises(McpConfigError, match=message) as caught:
        load_config(path, {})
    assert str(path) in str(caught.value)


def test_bad_url_error_does_not_show_a_secret_in_it(tmp_path: Path):
    path = write(tmp_path / "mcp.json", {"mcpServers": {"a": {"url": "ftp://h", "headers": {}},
                                                        "b": {"command": "x", "env": {"K": "${K}"}}}})
    config_error = None
    try:
        load_config(path, {"K": "secret-value-xyz"})
    except McpConfigError as exc:
        config_error = str(exc)
    assert config_error and "secret-value-xyz" not in config_error


def test_not_utf8_is_a_clear_error(tmp_path: Path):
    path = tmp_path / "mcp.json"
    path.write_bytes(b'{"mcpServers": {"\xff": {}}}')
    with pytest.raises(McpConfigError, match="is not UTF-8 text"):
        load_config(path, {})


# -- names -----------------------------------------------------------------------------


def test_server_keys_never_hold_a_double_underscore():
    assert server_key("my server") == "my_server"
    assert server_key("a__b") == "a_b"  # else --allow mcp__a would match a__b's tools
    assert server_key("__x__") == "x"


def test_tool_names_are_valid_unique_and_stable():
    tools = ["add", "read.file", "read file", "x" * 100, "y" * 100, "ünïcode"]
    names = tool_names("srv", tools)
    assert sorted(names.values()) == sorted(tools)
    assert all(VALID_NAME.match(name) and len(name) <= MAX_TOOL_NAME for name in names)
    assert names["mcp__srv__add"] == "add" and names["mcp__srv__read_file"] == "read.file"
    assert tool_names("srv", tools) == names  # the same names in every kernel

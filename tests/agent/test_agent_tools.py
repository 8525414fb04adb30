"""The built-in tools against a real directory tree: what they do, and that they stay inside the root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from codetether_magics.agent.tools import builtin_tools
from codetether_magics.agent.tools.base import ToolResult
from codetether_magics.agent.tools.search import glob_to_regex
from codetether_magics.caps import TOOL_OUTPUT_CAP, cap_tool_output
from codetether_magics.errors import ToolError


@pytest.fixture
def root(tmp_path: Path) -> Path:
    base = tmp_path / "project"
    (base / "src" / "pkg").mkdir(parents=True)
    (base / "src" / "pkg" / "a.py").write_text("import os\nVALUE = 1\n")
    (base / "src" / "b.py").write_text("def main():\n    return 'value'\n")
    (base / "notes.txt").write_text("first\nsecond\nthird\n")
    (base / ".git").mkdir()
    (base / ".git" / "config").write_text("VALUE in git internals\n")
    return base


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    secret = tmp_path / "outside"
    secret.mkdir()
    (secret / "secret.txt").write_text("TOP SECRET VALUE\n")
    return secret


def tools(root: Path) -> dict:
    return {tool.name: tool for tool in builtin_tools(root)}


async def call(root: Path, name: str, **args) -> str:
    result = await tools(root)[name].handler(args)
    return result.output if isinstance(result, ToolResult) else result


def test_the_seven_tools_with_json_schemas_and_approval_flags(root):
    by_name = tools(root)
    assert sorted(by_name) == ["bash", "edit", "glob", "grep", "list", "read", "write"]
    for tool in by_name.values():
        assert tool.parameters["type"] == "object"
        assert set(tool.parameters["required"]) <= set(tool.parameters["properties"])
        assert tool.spec.name == tool.name and tool.description
    assert {n for n, t in by_name.items() if not t.read_only} == {"write", "edit", "bash"}


async def test_read_numbers_lines_and_pages(root):
    out = await call(root, "read", path="notes.txt")
    assert out.splitlines()[0].split("\t") == ["     1", "first"]
    page = await call(root, "read", path="notes.txt", offset=2, limit=1)
    assert "second" in page and "first" not in page and "third" not in page
    assert "offset=3" in page  # says how to read on


async def test_read_refuses_missing_directories_and_binary(root):
    with pytest.raises(ToolError, match="No such file: nope.txt"):
        await call(root, "read", path="nope.txt")
    with pytest.raises(ToolError, match="is a directory"):
        await call(root, "read", path="src")
    (root / "blob.bin").write_bytes(b"\x00\x01\x02")
    with pytest.raises(ToolError, match="binary"):
        await call(root, "read", path="blob.bin")
    with pytest.raises(ToolError, match="'limit' must be an integer >= 1"):
        await call(root, "read", path="notes.txt", limit=0)


async def test_write_creates_parents_and_edit_replaces_unique_text(root):
    out = await call(root, "write", path="new/dir/c.py", content="x = 1\nx = 1\n")
    assert out.startswith("Created new/dir/c.py")
    assert (root / "new" / "dir" / "c.py").read_text() == "x = 1\nx = 1\n"
    with pytest.raises(ToolError, match="occurs 2 times"):
        await call(root, "edit", path="new/dir/c.py", old_string="x = 1", new_string="y = 2")
    await call(root, "edit", path="new/dir/c.py", old_string="x = 1", new_string="y = 2", replace_all=True)
    assert (root / "new" / "dir" / "c.py").read_text() == "y = 2\ny = 2\n"
    with pytest.raises(ToolError, match="was not found"):
        await call(root, "edit", path="new/dir/c.py", old_string="zzz", new_string="")


async def test_list_glob_and_grep(root):
    assert (await call(root, "list")).splitlines() == [".git/", "notes.txt", "src/"]
    assert (await call(root, "glob", pattern="**/*.py")).splitlines() == ["src/b.py", "src/pkg/a.py"]
    assert (await call(root, "glob", pattern="*.py", path="src")).splitlines() == ["src/b.py"]
    hits = (await call(root, "grep", pattern="value", ignore_case=True)).splitlines()
    assert hits == ["src/b.py:2:     return 'value'", "src/pkg/a.py:2: VALUE = 1"]  # .git is skipped
    assert await call(root, "grep", pattern="VALUE", include="b.py") == "[no matches]"
    with pytest.raises(ToolError, match="not a valid regular expression"):
        await call(root, "grep", pattern="(")


def test_glob_translation():
    assert glob_to_regex("**/*.py").match("a/b/c.py") and glob_to_regex("**/*.py").match("c.py")
    assert not glob_to_regex("*.py").match("a/c.py")
    assert glob_to_regex("data/[!x]?.csv").match("data/ab.csv")
    assert not glob_to_regex("data/[!x]?.csv").match("data/xb.csv")


async def test_bash_runs_in_the_root_and_reports_the_exit_code(root):
    tool = tools(root)["bash"]
    result = await tool.handler({"command": "pwd; echo oops >&2; exit 3"})
    assert isinstance(result, ToolResult) and result.success is False
    assert result.output.splitlines() == [str(root.resolve()), "oops", "[exit code 3]"]


async def test_bash_timeout_kills_the_command(root):
    tool = builtin_tools(root, bash_timeout=0.3)[-1]
    with pytest.raises(ToolError, match="timed out after 0.3 s"):
        await tool.handler({"command": "sleep 30"})


def test_bash_timeout_default_is_120_seconds(root):
    assert "120 s" in tools(root)["bash"].description


# -- confinement ---------------------------------------------------------------


@pytest.mark.parametrize("name,args", [
    ("read", {"path": "../outside/secret.txt"}),
    ("read", {"path": "src/../../outside/secret.txt"}),
    ("write", {"path": "../outside/planted.txt", "content": "x"}),
    ("edit", {"path": "../outside/secret.txt", "old_string": "TOP", "new_string": "x"}),
    ("list", {"path": ".."}),
    ("glob", {"pattern": "*", "path": "../outside"}),
    ("grep", {"pattern": "SECRET", "path": "../outside"}),
])
async def test_dot_dot_escapes_are_refused(root, outside, name, args):
    with pytest.raises(ToolError, match="outside the session directory"):
        await call(root, name, **args)
    assert not (outside / "planted.txt").exists()
    assert (outside / "secret.txt").read_text() == "TOP SECRET VALUE\n"


async def test_absolute_paths_outside_are_refused_and_inside_allowed(root, outside):
    with pytest.raises(ToolError, match="outside the session directory"):
        await call(root, "read", path=str(outside / "secret.txt"))
    with pytest.raises(ToolError, match="outside the session directory"):
        await call(root, "read", path="/etc/passwd")
    assert "first" in await call(root, "read", path=str(root / "notes.txt"))


async def test_symlinks_out_of_the_root_are_refused(root, outside):
    os.symlink(outside / "secret.txt", root / "link.txt")
    os.symlink(outside, root / "linkdir")
    for name, args in [("read", {"path": "link.txt"}), ("read", {"path": "linkdir/secret.txt"}),
                       ("write", {"path": "linkdir/planted.txt", "content": "x"}),
                       ("write", {"path": "link.txt", "content": "x"}),
                       ("list", {"path": "linkdir"})]:
        with pytest.raises(ToolError, match="outside the session directory"):
            await call(root, name, **args)
    assert not (outside / "planted.txt").exists()
    assert (outside / "secret.txt").read_text() == "TOP SECRET VALUE\n"
    # the walkers do not follow links out either
    assert "secret" not in await call(root, "glob", pattern="**/*")
    assert await call(root, "grep", pattern="SECRET") == "[no matches]"


async def test_a_root_reached_through_a_symlink_lists_paths_relative_to_it(root, tmp_path):
    via_link = tmp_path / "project-link"
    os.symlink(root, via_link)
    assert (await call(via_link, "glob", pattern="**/*.py")).splitlines() == ["src/b.py", "src/pkg/a.py"]
    assert (await call(via_link, "grep", pattern="VALUE", path="src")).splitlines() == ["src/pkg/a.py:2: VALUE = 1"]
    assert await call(via_link, "grep", pattern="first", path="notes.txt") == "notes.txt:1: first"


async def test_symlinks_inside_the_root_work(root):
    os.symlink(root / "notes.txt", root / "alias.txt")
    assert "second" in await call(root, "read", path="alias.txt")


async def test_bad_arguments_get_clear_errors(root):
    with pytest.raises(ToolError, match="'path' must be a non-empty string"):
        await call(root, "read")
    with pytest.raises(ToolError, match="'content' must be a string"):
        await call(root, "write", path="a.txt", content=3)
    with pytest.raises(ToolError, match="'pattern' must be a non-empty glob"):
        await call(root, "glob")
    with pytest.raises(ToolError, match="may not contain '..'"):
        await call(root, "glob", pattern="../*")


async def test_threaded_tool_work_runs_off_the_event_loop():
    import asyncio
    import threading

    from codetether_magics.agent.tools.common import threaded_tool

    release = threading.Event()

    def work(args):
        return f"released: {release.wait(5)}"

    task = asyncio.ensure_future(threaded_tool("wait", "waits", work, properties={}, read_only=True).handler({}))
    await asyncio.sleep(0.01)  # run inline, work would hold the loop here until its 5 s wait ran out
    release.set()
    assert await task == "released: True"


def test_builtin_tools_needs_an_existing_directory(tmp_path):
    with pytest.raises(NotADirectoryError, match="not a directory"):
        builtin_tools(tmp_path / "missing")


def test_cap_tool_output_caps_at_4096_bytes_and_names_the_full_size():
    assert cap_tool_output("short") == "short"
    big = "é" * 5000  # 10,000 bytes, two bytes a character: the cut must not split one
    capped = cap_tool_output(big)
    assert len(capped.encode("utf-8")) <= TOOL_OUTPUT_CAP == 4096
    assert "10000 bytes" in capped
    assert capped.startswith("é" * 1000)


async def test_cancelling_bash_kills_its_process_group(root):
    import asyncio

    tool = tools(root)["bash"]
    task = asyncio.ensure_future(tool.handler({"command": "echo $$ > shell.pid; sleep 30 & echo $! > child.pid; wait"}))
    for _ in range(200):
        if (root / "child.pid").exists() and (root / "child.pid").read_text().strip():
            break
        await asyncio.sleep(0.01)
    child = int((root / "child.pid").read_text())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(ProcessLookupError):  # the shell was reaped before the cancellation came out
        os.kill(int((root / "shell.pid").read_text()), 0)
    for _ in range(200):  # the SIGKILL lands at once; reaping by init may take a moment
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        if Path(f"/proc/{child}/stat").exists() and Path(f"/proc/{child}/stat").read_text().split()[2] == "Z":
            break
        await asyncio.sleep(0.01)
    else:
        pytest.fail(f"the child process {child} of the cancelled command is still running")

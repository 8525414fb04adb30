"""The example notebooks' cells and the scripted model answers they are recorded with.

scripts/record_notebooks.py turns each ``Example`` into notebooks/<name>.ipynb and records
it against ``ScriptedModelServer``. Edit the cells or the answers here, then re-record.
Each scripted turn answers one model request, in order; ``expect_*`` checks make the
recording fail when the request is not what the notebook should send (a tool result, an image).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from codetether_magics.testing import Turn

__all__ = ["EXAMPLES", "Example"]


@dataclass(frozen=True)
class Example:
    name: str
    cells: list[tuple[str, ...]]  # ("md" | "code", source[, cell tag, ...])
    turns: Callable[[], list[Turn]]
    files: tuple[str, ...] = ()  # files of notebooks/ the notebook needs beside it (an MCP server)


def _about(name: str, title: str, intro: str) -> str:
    return f"""# {title}

{intro}

> **The agent answers in this notebook were recorded against the project's own scripted test model
> server** (`codetether_magics.testing.ScriptedModelServer`, by `scripts/record_notebooks.py`), not a
> real model. They are kept in the transcript beside this notebook, `{name}.codetether.json`. With no
> API key configured, each `%%codetether` cell is answered from that transcript (replay): no network
> call and the same output every run, which is how `pytest --nbval notebooks` checks this notebook.
> A recorded tool call that changes things (running Python, say) runs again only where the cell allows
> it now, as in a live run (`--allow python`): a transcript from someone else never runs code you did
> not allow.
>
> **To record with a real model**, set a provider key before starting Jupyter (for example
> `export OPENAI_API_KEY=sk-...`, optionally `export CODETETHER_MODEL=openai/gpt-4o-mini`), then run a
> cell with `%%codetether --live`, or delete `{name}.codetether.json` and run all cells. New answers
> are saved to the transcript as they arrive; `--replay` or `CODETETHER_REPLAY=1` forces replay."""


def _setup(name: str) -> str:
    return f"""%load_ext codetether_magics
# JupyterLab tells the kernel which notebook it runs; nbclient and nbval do not. Name it
# (relative to this folder) so the transcript beside it, {name}.codetether.json, is used.
%env CODETETHER_NOTEBOOK={name}.ipynb"""


def _title(text: str) -> Turn:
    """The loop's title request, which comes last in a conversation's first turn."""
    return Turn.text(text, usage=(38, 6), expect_system="title")


# -- quickstart ------------------------------------------------------------------

_QUICKSTART = Example(
    name="quickstart",
    cells=[
        ("md", _about(
            "quickstart", "codetether-magics quickstart",
            "Load the extension, talk to the agent in a `%%codetether` cell, let it run Python in this "
            "kernel, and see what the conversation has cost.")),
        ("code", _setup("quickstart")),
        ("md", "## A first conversation\n\nThe cell body is the prompt. The answer streams into a widget "
               "while the cell runs; the cell keeps one Markdown output at the end."),
        ("code", "%%codetether\nIn two sentences: what does a Jupyter kernel do?"),
        ("md", "## A tool call\n\nThe agent can run code in this kernel with its `python` tool. Tools that "
               "change things need your approval: `--allow python` gives it for this cell. The variables "
               "the agent creates stay in the notebook."),
        ("code", "%%codetether --allow python\nCompute the squares of 1 to 10 with Python, keep them in a "
                 "variable named squares, and tell me their sum."),
        ("code", "squares[-3:], sum(squares)"),
        ("md", "## Usage\n\n`%codetether usage` shows the tokens this notebook's conversation has used."),
        ("code", "%codetether usage"),
        ("md", "## Next\n\n- `plots.ipynb`: send a matplotlib figure to the agent with `-i`.\n"
               "- `data.ipynb`: the agent inspects a DataFrame and runs pandas code.\n"
               "- `%codetether help` lists the line commands; `%%codetether?` the cell options."),
    ],
    turns=lambda: [
        Turn.text("A Jupyter kernel is the process that runs the code in your notebook's cells and sends "
                  "the results back to the page. It keeps variables in memory between cells, so each cell "
                  "can build on the ones run before it.", usage=(48, 39)),
        _title("What a Jupyter kernel does"),
        Turn.tool_call("python", {"code": "squares = [n * n for n in range(1, 11)]\nsum(squares)"},
                       text="I'll compute that in the kernel.", usage=(131, 33), expect_tools=("python",)),
        Turn.text("`squares` now holds the squares of 1 to 10 (`[1, 4, 9, ..., 100]`) and their sum is "
                  "**385**.", usage=(176, 27), expect_tool_result="385"),
    ],
)

# -- plots -----------------------------------------------------------------------

_PLOT_CODE = """import matplotlib.pyplot as plt

months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun"]
visitors = [120, 135, 160, 190, 230, 280]
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(months, visitors, marker="o")
ax.set_title("Visitors per month")
ax.set_ylabel("visitors")
plt.show()"""

_PLOTS = Example(
    name="plots",
    cells=[
        ("md", _about(
            "plots", "Show the agent a plot",
            "`-i REF` sends an image with the prompt: `last` (the last image shown above), an execution "
            "count `N` or `Out[N]`, or a variable holding a matplotlib Figure, a PIL image, PNG/JPEG bytes "
            "or a file path.")),
        ("code", _setup("plots")),
        ("code", _PLOT_CODE),
        ("md", "`-i last` sends the figure above as a PNG; `-i fig` would send the same figure from its variable."),
        ("code", "%%codetether -i last\nDescribe the trend in this chart in one short paragraph."),
    ],
    turns=lambda: [
        Turn.text("Visitors rise every month, from 120 in January to 280 in June, and the growth speeds "
                  "up: the monthly increase goes from 15 to 50 visitors, so the line curves upward "
                  "instead of climbing at a steady rate.", usage=(912, 46), expect_image=True),
        _title("Visitor trend in the chart"),
    ],
)

# -- data ------------------------------------------------------------------------

_SALES_CODE = """import pandas as pd

sales = pd.DataFrame({
    "region": ["North", "South", "East", "West", "North", "South", "East", "West"],
    "quarter": ["Q1", "Q1", "Q1", "Q1", "Q2", "Q2", "Q2", "Q2"],
    "revenue": [120.0, 95.5, 143.2, 88.0, 131.5, 102.0, 150.8, 91.3],
})
sales.head(3)"""

_TOTALS_CODE = 'totals = sales.groupby("region")["revenue"].sum().sort_values(ascending=False)\ntotals'

_DATA = Example(
    name="data",
    cells=[
        ("md", _about(
            "data", "Let the agent look at your data",
            "The agent sees the notebook's variables through its `variables` tool (read-only: names, "
            "types, shapes, a DataFrame's columns and dtypes) and can run code with `python`.")),
        ("code", _setup("data")),
        ("code", _SALES_CODE, "nbval-ignore-output"),  # pandas' HTML table changes between versions
        ("md", "`variables` needs no approval; `python` does, so this cell allows it with `--allow python`."),
        ("code", "%%codetether --allow python\nWhich region had the highest total revenue? Keep the totals per "
                 "region in a variable named totals."),
        ("md", "The agent's `totals` is an ordinary variable of this notebook:"),
        ("code", "totals.idxmax(), round(float(totals.max()), 1)"),
    ],
    turns=lambda: [
        Turn.tool_call("variables", {}, usage=(240, 12), expect_tools=("python", "variables")),
        Turn.tool_call("python", {"code": _TOTALS_CODE},
                       text="`sales` is a DataFrame with `region`, `quarter` and `revenue` columns; I'll "
                            "total the revenue per region.", usage=(318, 52), expect_tool_result="sales"),
        Turn.text("**East** had the highest total revenue, 294.0 over the two quarters, ahead of North "
                  "(251.5), South (197.5) and West (179.3). The totals are in `totals`, highest first.",
                  usage=(402, 44), expect_tool_result="East"),
        _title("Highest revenue by region"),
    ],
)

# -- fix -------------------------------------------------------------------------

_FIX_CODE = 'total = stock["banana"] + stock["apple"]\ntotal'
_FIXED_CODE = 'total = stock.get("banana", 0) + stock["apple"]\ntotal'

_FIX = Example(
    name="fix",
    cells=[
        ("md", _about(
            "fix", "Let the agent fix an error",
            "Each live turn tells the agent what you ran since its last turn: the cells, their output, "
            "their errors. `%codetether fix` sends the last exception (type, message, traceback and the "
            "failing cell) and asks for an explanation and the fix as a new cell.")),
        ("code", _setup("fix")),
        ("code", 'stock = {"apple": 3, "pear": 5}\nprint("fruit in stock:", ", ".join(stock))'),
        ("code", _FIX_CODE, "raises-exception", "nbval-raises-exc"),
        ("md", "`%codetether fix` needs no prompt. The agent proposes its fix with the `insert_cell` tool: in "
               "JupyterLab, Notebook 7 and VS Code the new cell appears below, not run, for you to review."),
        ("code", "%codetether fix"),
        ("md", "The cell it proposed (nbclient and nbval do not insert cells, so here it is, as inserted):"),
        ("code", _FIXED_CODE),
        ("md", "`%%codetether --fix` does the same and adds the cell's words to the request."),
        ("code", "%%codetether --fix\nIn one sentence: when is .get with a default the wrong fix?"),
    ],
    turns=lambda: [
        Turn.tool_call("insert_cell", {"source": _FIXED_CODE},
                       text="`stock` has no key `'banana'`: it holds only `apple` and `pear`.", usage=(612, 41),
                       expect_user_text="Cell 3 raised KeyError: 'banana'", expect_tools=("cells", "insert_cell")),
        Turn.text("The lookup `stock[\"banana\"]` raised `KeyError` because `stock` (made in cell 2) has no "
                  "`banana` entry. The new cell below counts a missing fruit as 0 with `stock.get(\"banana\", 0)`; "
                  "run it to get the total.", usage=(690, 52), expect_tool_result="Inserted a new code cell"),
        _title("Fix KeyError for banana"),
        Turn.text("When a missing key means the data is wrong (a typo in the name, a failed load): a default "
                  "of 0 then hides the bug instead of reporting it.", usage=(760, 33),
                  expect_user_text="when is .get with a default the wrong fix?"),
    ],
)

# -- mcp -------------------------------------------------------------------------

_TIMES = [120, 135, 160, 190, 230, 280, 900]

_MCP_CONFIG_CODE = """import json
import sys
from pathlib import Path

# The mcpServers file that Claude Desktop, Cursor and VS Code share. The server is mcp_server.py
# beside this notebook, run with this kernel's Python (which has the `mcp` SDK installed).
servers = {"mcpServers": {"stats": {"command": sys.executable, "args": ["mcp_server.py"]}}}
Path("mcp_example.json").write_text(json.dumps(servers, indent=2))
%env CODETETHER_MCP_CONFIG=mcp_example.json"""

_MCP = Example(
    name="mcp",
    cells=[
        ("md", _about(
            "mcp", "Tools from an MCP server",
            "The agent can use the tools of any Model Context Protocol server: the ones you already run for "
            "Claude Desktop, Cursor or VS Code. This notebook uses a small stdio server shipped beside it, "
            "`mcp_server.py` (statistics of a list of numbers).")),
        ("code", _setup("mcp")),
        ("md", "## The config\n\nServers are read from `$CODETETHER_MCP_CONFIG` when set, else `mcp.json` "
               "beside the notebook, else `~/.config/codetether-agent/mcp.json`. Values may use `${VAR}`; "
               "`env` and `headers` values are scrubbed from every output. Here the file is written by the "
               "notebook, so it names this kernel's Python."),
        ("code", _MCP_CONFIG_CODE),
        ("md", "## The servers and their tools\n\nServers start with the first `%%codetether` cell (or now, "
               "with `%codetether mcp start`) and serve every cell until the kernel stops. Their tools are "
               "named `mcp__<server>__<tool>`."),
        ("code", "%codetether mcp start", "nbval-ignore-output"),  # shows this machine's Python path
        ("md", "## A tool call\n\nMCP tools can do anything, so they need approval: `--allow mcp__stats` "
               "allows every tool of that server for this cell (`--allow mcp` every MCP tool, or name one tool)."),
        ("code", "%%codetether --allow mcp__stats\nThese are response times in ms: "
                 + ", ".join(map(str, _TIMES)) + ". Describe them with the stats tools."),
        ("md", "## Not allowed\n\nWithout `--allow`, and with nobody to ask (nbval, `jupyter execute`), the "
               "call is refused and the model is told how you can allow it."),
        ("code", "%%codetether\nAnd the 90th percentile?"),
    ],
    turns=lambda: [
        Turn.tool_call("mcp__stats__describe", {"numbers": _TIMES}, usage=(402, 31),
                       expect_tools=("mcp__stats__describe", "mcp__stats__percentile", "python")),
        Turn.text("Seven response times, from 120 to 900 ms. The **median is 190 ms** but the **mean is "
                  "287.86 ms**: the one slow request of 900 ms pulls the mean up, and the standard deviation "
                  "(275.56 ms) is as large as the mean. Look at that outlier first.",
                  usage=(498, 58), expect_tool_result='"median": 190.0'),
        _title("Response time statistics"),
        Turn.tool_call("mcp__stats__percentile", {"numbers": _TIMES, "q": 90}, usage=(560, 28)),
        Turn.text("I could not compute it: the `mcp__stats__percentile` tool needs your approval. Run the "
                  "cell again with `--allow mcp__stats__percentile` (or `--allow mcp__stats`).",
                  usage=(640, 36), expect_tool_result="needs approval"),
    ],
    files=("mcp_server.py",),
)

EXAMPLES: dict[str, Example] = {e.name: e for e in (_QUICKSTART, _PLOTS, _DATA, _FIX, _MCP)}

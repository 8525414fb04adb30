"""The ``CodeTether`` magics: ``%%codetether`` (a prompt) and ``%codetether`` (subcommands).

Importing this module costs only IPython and traitlets (already loaded in a kernel): the
agent, pydantic, httpx and ipywidgets are imported on the first run, so ``%load_ext``
stays fast. Configure with ``%config CodeTether.model = "openai/gpt-4o-mini"`` and likewise
``max_steps``, ``auto_approve``, ``replay``, ``approval_timeout``, ``context_tokens`` and
``context_cells_tokens``.
"""

from __future__ import annotations

import shlex
from typing import Any

from IPython.core import magic_arguments as ma
from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand
from traitlets import Bool, Float, Int, TraitError, Unicode, validate

from .cell_rewrite import RUNNER_NAME, strip_nbval_lines

__all__ = ["CodeTether", "cell_prompt", "cell_usage", "parse_cell_options"]


@magics_class
class CodeTether(Magics):
    """Run the CodeTether agent from notebook cells."""

    model = Unicode(
        None, allow_none=True, help='Default model, "provider/model" (e.g. "openai/gpt-4o-mini").'
    ).tag(config=True)
    max_steps = Int(None, allow_none=True, help="Most model calls per cell (default 50).").tag(config=True)
    auto_approve = Bool(
        False, help="Run tools that change things (python, bash, edits) without asking."
    ).tag(config=True)
    replay = Bool(False, help="Answer every cell from the saved transcript, with no network call.").tag(
        config=True
    )
    approval_timeout = Float(300.0, help="Seconds to wait for Approve / Deny before denying.").tag(
        config=True
    )
    context_tokens = Int(
        None, allow_none=True,
        help="The model's context window in tokens (default: CODETETHER_CONTEXT_TOKENS, else the known "
        "window of the model, else 128000). Requests stay within 90% of it.",
    ).tag(config=True)
    context_cells_tokens = Int(
        2000, help="Most tokens of notebook context (cells run since the agent's last turn) in each "
        "request; 0 sends none."
    ).tag(config=True)

    @validate("context_cells_tokens")
    def _check_context_tokens(self, proposal: Any) -> Any:
        if proposal["value"] < 0:
            raise TraitError(f"CodeTether.context_cells_tokens must be 0 or more, got {proposal['value']}")
        return proposal["value"]

    @validate("max_steps")
    def _check_max_steps(self, proposal: Any) -> Any:
        value = proposal["value"]
        if value is not None and value < 1:
            raise TraitError(f"CodeTether.max_steps must be 1 or more (or None for the default 50), got {value}")
        return value

    @validate("context_tokens")
    def _check_context_tokens(self, proposal: Any) -> Any:
        value = proposal["value"]
        if value is not None and value < 1:
            raise TraitError(f"CodeTether.context_tokens must be 1 or more tokens (or None for the model's own "
                             f"window), got {value}")
        return value

    @validate("approval_timeout")
    def _check_timeout(self, proposal: Any) -> Any:
        if proposal["value"] <= 0:
            raise TraitError(f"CodeTether.approval_timeout must be more than 0 seconds, got {proposal['value']}")
        return proposal["value"]

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self._state: Any = None  # binding.NotebookState, made on first use (heavy imports)
        self._capture: Any = None  # images.ImageCapture, hooked in at load
        self._cell_log: Any = None  # cell_log.CellLog, listening to the capture
        self._context: Any = None  # context.NotebookContext over the cell log
        self._mcp: Any = None  # mcp_tools.NotebookMcp, made on first use

    def start_capture(self) -> None:
        """Capture images from cell outputs from now on, so ``-i last`` finds earlier plots."""
        from .cell_log import CellLog
        from .context import NotebookContext
        from .images import ImageCapture

        self._capture = ImageCapture(self.shell)
        self._cell_log = CellLog(self.shell)
        self._capture.listener = self._cell_log
        self._capture.register()
        self._context = NotebookContext(self._cell_log, self.shell)

    @property
    def capture(self) -> Any:
        return self._capture

    @property
    def cell_log(self) -> Any:
        """The cells run since load (``cell_log.CellLog``), or None before ``start_capture``."""
        return self._cell_log

    @property
    def notebook_context(self) -> Any:
        """Builds each live turn's notebook context (``context.NotebookContext``), or None."""
        return self._context

    def close(self) -> None:
        """Undo ``start_capture`` and forget per-kernel state (``%unload_ext``)."""
        if self._capture is not None:
            self._capture.unregister()
            self._capture = None
        if self._cell_log is not None:
            self._cell_log.untee_streams()
            self._cell_log = self._context = None
        if self._mcp is not None:  # stop this kernel's MCP servers
            self._mcp.close()
            self._mcp = None
        self._state = None

    @property
    def mcp(self) -> Any:
        """This kernel's MCP servers (``mcp_tools.NotebookMcp``); the SDK loads only if a config exists."""
        if self._mcp is None:
            from .mcp_tools import NotebookMcp

            self._mcp = NotebookMcp(self)
        return self._mcp

    @property
    def state(self) -> Any:
        """Per-kernel state: the bound notebook, its session, prompt counts, image capture."""
        if self._state is None:
            from .binding import NotebookState

            self._state = NotebookState(self)
        return self._state

    # -- %%codetether -----------------------------------------------------------

    @ma.magic_arguments(name="codetether")
    @ma.argument("-m", "--model", help='model as "provider/model"; overrides %%config CodeTether.model')
    @ma.argument(
        "-i", "--image", action="append", default=[], metavar="REF",
        help="send an image: last, N, Out[N], or a variable holding a figure, PIL image, "
        "PNG/JPEG bytes or a file path (repeatable)",
    )
    @ma.argument("--new", action="store_true", help="start a new conversation (the old one is kept)")
    @ma.argument("--session", metavar="ID", help="continue the saved session ID in this cell")
    @ma.argument("--max-steps", type=int, metavar="N", help="most model calls for this cell")
    @ma.argument(
        "--allow", action="append", default=[], metavar="TOOLS",
        help="comma-separated tools that may run without asking (python,bash,...), or all",
    )
    @ma.argument("--replay", action="store_true", help="answer from the saved transcript (no network)")
    @ma.argument("--live", action="store_true", help="call the model even when a recording exists")
    @ma.argument("--no-stream", action="store_true", help="no live view; show only the final answer")
    @ma.argument(
        "--fix", action="store_true",
        help="explain this kernel's last exception and propose a fix as a new cell (the cell's words are added)",
    )
    @ma.argument("--think", type=int, metavar="N", help="let the model think first, with a budget of N tokens "
                 "(Anthropic extended thinking, at least 1024; OpenAI reasoning models on the Responses API); "
                 "off by default")
    @ma.argument("--budget", type=float, metavar="USD", help="stop before a model call that would take this cell "
                 "past USD dollars (also CODETETHER_COST_LIMIT_USD)")
    @no_var_expand  # $ and {} in the options mean themselves, as on the kernel path
    @cell_magic("codetether")
    def codetether_cell(self, line: str, cell: str) -> None:
        """Send the cell to the agent of this notebook's CodeTether session.

        The answer streams into a live view and is left as Markdown when the run ends.
        Lines starting ``# NBVAL_`` are not sent; ``{}`` and ``$`` are sent as written.
        """
        from .cell import run_cell
        from .sync import run_sync

        request = self._cell_request(line, cell)
        if request is not None:
            run_sync(lambda: run_cell(self, *request))

    def install_runner(self, *_event_info: Any) -> None:
        """Put ``run_cell_async`` where rewritten cells find it (hidden from ``%who``)."""
        if self.shell.user_ns.get(RUNNER_NAME) != self.run_cell_async:
            self.shell.user_ns[RUNNER_NAME] = self.run_cell_async
            self.shell.user_ns_hidden[RUNNER_NAME] = self.run_cell_async

    async def run_cell_async(self, line: str, body: str) -> None:
        """What a rewritten ``%%codetether`` cell awaits under ipykernel."""
        from .cell import run_cell  # the heavy imports start here, on the first run

        request = self._cell_request(line, body)
        if request is not None:
            await run_cell(self, *request)

    def _cell_request(self, line: str, body: str) -> tuple[Any, str] | None:
        """The options and the prompt; with ``--fix`` the prompt is the last exception (the body's
        words added), or None when there is none (a one-line message, no model call)."""
        options = parse_cell_options(line)
        if not options.fix:
            return options, cell_prompt(body)
        from .fix import fix_prompt

        prompt = fix_prompt(self, strip_nbval_lines(body).strip("\n"))
        return None if prompt is None else (options, prompt)

    # -- %codetether ------------------------------------------------------------

    @no_var_expand  # `%codetether title Costs {x} $5` keeps its braces and dollars
    @line_magic("codetether")
    def codetether_line(self, line: str) -> None:
        """Manage this notebook's CodeTether session.

        %codetether status              the notebook, its transcript, session, model, usage
        %codetether new                 start a new conversation (the old one is kept)
        %codetether list                saved sessions (this notebook's first)
        %codetether resume ID           continue a saved session in this notebook
        %codetether title [TEXT]        show or set the title
        %codetether model [NAME]        show or set the model ("provider/model")
        %codetether usage               tokens used by this session
        %codetether export md|json [PATH]   write the transcript as Markdown or JSON
        %codetether bind NOTEBOOK_PATH  say which notebook this kernel serves
        %codetether fix [WORDS]         explain the last exception and propose a fix as a new cell
        %codetether mcp [start | restart [SERVER]]   MCP servers: state and tools
        %codetether help                this text
        """
        from .subcommands import run_subcommand

        run_subcommand(self, line)


def parse_cell_options(line: str) -> Any:
    """Parse a ``%%codetether`` line; a bad one raises UsageError naming the problem, with the usage."""
    parser = CodeTether.codetether_cell.parser
    try:
        options = parser.parse_args(shlex.split(line))  # shell quoting: -m "a/b" gives a/b
    except (UsageError, ValueError) as exc:  # ValueError: unbalanced quotes
        raise UsageError(f"%%codetether: {exc}\n{cell_usage()}") from None
    problem = _option_problem(options)
    if problem:
        raise UsageError(f"%%codetether: {problem}\n{cell_usage()}")
    return options


def cell_prompt(body: str) -> str:
    """The prompt a cell body sends: without ``# NBVAL_`` lines; an empty one is a UsageError."""
    prompt = strip_nbval_lines(body).strip("\n")
    if not prompt.strip():
        raise UsageError("%%codetether: the cell has no prompt; write it on the lines under %%codetether.")
    return prompt


def cell_usage() -> str:
    usage = CodeTether.codetether_cell.parser.format_usage()  # "::\n\n  %codetether [-m MODEL] ..."
    text = " ".join(usage.replace("::", " ").split())
    return "Usage: %" + text + "\n(see %%codetether? for every option)"


def _option_problem(options: Any) -> str | None:
    if options.max_steps is not None and options.max_steps < 1:
        return f"--max-steps must be 1 or more, got {options.max_steps}"
    if options.think is not None and options.think < 1024:
        return f"--think needs a budget of at least 1024 tokens (the smallest the APIs accept), got {options.think}"
    if options.budget is not None and not 0 <= options.budget < float("inf"):
        return f"--budget must be an amount of US dollars such as 0.25, got {options.budget}"
    if options.replay and options.live:
        return "--replay and --live contradict each other: choose one"
    if options.new and options.session:
        return "--new and --session contradict each other: choose one"
    if options.model is not None and not options.model.strip():
        return '--model needs a name such as "openai/gpt-4o-mini"'
    return None

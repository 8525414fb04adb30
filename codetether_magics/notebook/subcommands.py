"""``%codetether SUBCOMMAND``: status, new, list, resume, title, model, usage, export, bind, fix, mcp, help."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any, Callable

from IPython.core.error import UsageError

from .sync import run_sync

__all__ = ["SUBCOMMANDS", "run_subcommand"]


def run_subcommand(magics: Any, line: str) -> None:
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"%codetether: {exc}") from None
    name, args = (words[0], words[1:]) if words else ("status", [])
    handler = SUBCOMMANDS.get(name)
    if handler is None:
        raise UsageError(f"%codetether: unknown subcommand {name!r}. {_choices()}")
    from ..errors import CodeTetherError

    try:
        handler(magics, args)
    except CodeTetherError as exc:  # one clear line, not a traceback
        raise UsageError(f"%codetether {name}: {exc}") from None


def _choices() -> str:
    return "Use one of: " + ", ".join(SUBCOMMANDS) + " (%codetether help explains each)."


def _expect(args: list[str], at_most: int, usage: str) -> None:
    if len(args) > at_most:
        raise UsageError(f"%codetether: too many arguments: {' '.join(args)!r}. Usage: %codetether {usage}")


def _current(magics: Any) -> Any:
    return run_sync(lambda: magics.state.current())


# -- the subcommands ------------------------------------------------------------


def status(magics: Any, args: list[str]) -> None:
    _expect(args, 0, "status")
    location = magics.state.location()
    session = _current(magics)
    saved = "saved" if location.transcript.exists() else "not saved yet"
    print(f"Notebook:   {location.path} (from {location.source})")
    print(f"Transcript: {location.transcript} ({saved})")
    print(f"Session:    {session.id}" + (f" — {session.title}" if session.title else ""))
    print(f"Model:      {_model_label(magics, session)}")
    print(f"Messages:   {len(session.messages)}; {_usage_line(session.usage)}")


def new(magics: Any, args: list[str]) -> None:
    _expect(args, 0, "new")
    session, archived = run_sync(lambda: magics.state.start_new())
    print(f"Started a new conversation ({session.id}).")
    if archived:
        print(f"The previous one is kept: %codetether resume {archived}")


def list_(magics: Any, args: list[str]) -> None:
    _expect(args, 0, "list")
    from ..session.session import list_sessions

    current = _current(magics)
    summaries = run_sync(lambda: list_sessions(count_messages=False))  # the listing shows no counts
    if not any(s.id == current.id for s in summaries):
        print(f"* {current.id}  (this notebook, not saved yet)")
    for summary in summaries:
        mark = "*" if summary.id == current.id else " "
        title = summary.title or "(untitled)"
        where = f"  [{summary.notebook}]" if summary.notebook else ""
        print(f"{mark} {summary.id}  {summary.updated_at:%Y-%m-%d %H:%M}  {title}{where}")
    if not summaries:
        print("No saved sessions yet.")


def resume(magics: Any, args: list[str]) -> None:
    if len(args) != 1:
        raise UsageError(
            "%codetether: resume needs one session id. Usage: %codetether resume ID (see %codetether list)")
    session = run_sync(lambda: magics.state.resume(args[0]))
    title = f" — {session.title}" if session.title else ""
    print(f"Resumed {session.id}{title} ({len(session.messages)} messages).")


def title(magics: Any, args: list[str]) -> None:
    session = _current(magics)
    if not args:
        print(session.title or "(untitled: the first prompt will name it)")
        return
    session.set_title(" ".join(args))
    _save_or_reread(magics, session)
    print(f"Title: {session.title}")


def model(magics: Any, args: list[str]) -> None:
    _expect(args, 1, "model [NAME]")
    session = _current(magics)
    if not args:
        print(_model_label(magics, session))
        return
    magics.model = args[0]
    print(f"Model for the next cells: {args[0]} (a cell's --model still wins)")


def usage(magics: Any, args: list[str]) -> None:
    _expect(args, 0, "usage")
    session = _current(magics)
    print(_usage_line(session.usage))
    from ..providers.pricing import describe_cost  # lazy: the price table is not needed at %load_ext

    print(describe_cost(session.usage, session.metadata.model))
    context = _context_line(session)
    if context:  # only once the budget has acted, so a short session's output stays as it was
        print(context)


def export(magics: Any, args: list[str]) -> None:
    if not args or args[0] not in ("md", "json") or len(args) > 2:
        raise UsageError("%codetether: export needs a format. Usage: %codetether export md|json [PATH]")
    from .export import to_json, to_markdown

    session = _current(magics)
    fmt = args[0]
    notebook = magics.state.location().path
    default = notebook.with_name(notebook.stem + (".codetether.md" if fmt == "md" else ".export.json"))
    target = Path(args[1]) if len(args) == 2 else default
    data = to_markdown(session) if fmt == "md" else to_json(session)
    target.write_bytes(data)
    print(f"Wrote {target} ({len(data)} bytes).")


def bind(magics: Any, args: list[str]) -> None:
    if len(args) != 1:
        raise UsageError("%codetether: bind needs the notebook's path. Usage: %codetether bind NOTEBOOK_PATH")
    location = magics.state.bind(args[0])
    if location.source != "%codetether bind":
        print(f"Note: {location.source} names the notebook, and it comes first: still using {location.path}.")
        return
    state = "found" if location.transcript.exists() else "new"
    print(f"Bound to {location.path}; transcript {location.transcript} ({state}).")


def fix(magics: Any, args: list[str]) -> None:
    """Explain the last exception and propose a fix (a cell holding only this line streams: see cell_rewrite)."""
    magics.codetether_cell("--fix", " ".join(args))


def mcp(magics: Any, args: list[str]) -> None:
    usage = "mcp [start | restart [SERVER]]"
    if args and args[0] not in ("start", "restart"):
        raise UsageError(f"%codetether: unknown mcp action {args[0]!r}. Usage: %codetether {usage}")
    _expect(args, 2 if args and args[0] == "restart" else 1, usage)
    from .mcp_tools import status_lines

    servers = magics.mcp
    manager = servers.manager()
    if manager is not None and args:
        servers.trust()  # typing it is the consent a config beside the notebook needs
        if args[0] == "start":
            manager.start_sync()
        else:
            manager.restart_sync(args[1] if len(args) == 2 else None)
        servers.take_notices()  # the listing below says the same
    for line in status_lines(servers):
        print(line)


def help_(magics: Any, args: list[str]) -> None:
    import inspect

    print(inspect.cleandoc(type(magics).codetether_line.__doc__ or ""))


# -- helpers ----------------------------------------------------------------------


def _save_or_reread(magics: Any, session: Any) -> None:
    """Save to the notebook's file; when another kernel changed it, forget this stale copy instead."""
    from ..errors import SessionConflictError

    transcript = magics.state.location().transcript
    try:
        run_sync(lambda: session.save(transcript))
    except SessionConflictError:
        magics.state.forget()
        raise SessionConflictError(
            f"{transcript.name} was changed by another kernel or program since this kernel read it, so it "
            "was not saved over. Run the same command again: this kernel reads the file first.") from None


def _model_label(magics: Any, session: Any) -> str:
    if magics.model:
        return f"{magics.model} (CodeTether.model)"
    if session.metadata.model:
        return f"{session.metadata.model} (last used in this session)"
    return "not chosen: CODETETHER_MODEL, else the first configured provider's default"


def _context_line(session: Any) -> str:
    from ..agent.context import budget_counts

    compactions, truncations = budget_counts(session)
    if not (compactions or truncations):
        return ""
    return f"context: {compactions} compaction{'s' if compactions != 1 else ''}, {truncations} truncated request" \
        + ("s" if truncations != 1 else "")


def _usage_line(usage: Any) -> str:
    return (
        f"tokens: {usage.prompt_tokens} prompt + {usage.completion_tokens} completion = "
        f"{usage.total_tokens} total"
    )


SUBCOMMANDS: dict[str, Callable[[Any, list[str]], None]] = {
    "status": status,
    "new": new,
    "list": list_,
    "resume": resume,
    "title": title,
    "model": model,
    "usage": usage,
    "export": export,
    "bind": bind,
    "fix": fix,
    "mcp": mcp,
    "help": help_,
}

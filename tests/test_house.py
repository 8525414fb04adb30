"""The house rules, checked on the source: import arrows point one way and modules stay small.

Every module of the package is parsed (``ast``); every ``import x`` and ``from x import y`` counts,
relative ones resolved, including imports inside functions (a lazy import is still an arrow) and
under ``TYPE_CHECKING`` (never run, but a reader and a type checker still follow it, so it counts in
cycles too). The rules (docs/design.md explains them):

- no import cycle between modules;
- ``session/`` imports nothing of ``agent``, ``providers``, ``notebook`` or ``testing``;
- ``providers/`` nothing of ``agent``, ``notebook``, ``session`` or ``testing``;
- ``agent/`` nothing of ``notebook`` or ``testing``;
- the shared top-level modules (messages, events, errors, ...) nothing of any sub-package;
- nothing imports ``testing/`` (only the tests do), and nothing imports the package root;
- no module over 400 lines unless its first docstring says why (a line starting "Long:").

Each rule is also run against a planted violation, so a checker that cannot fail is caught.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "codetether_magics"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE
MAX_LINES = 400
LONG_REASON = "Long:"
SIZE_EXEMPT: set[str] = set()  # modules allowed past MAX_LINES without a "Long:" reason (none)

SUBPACKAGES = {"session", "agent", "providers", "notebook", "testing"}
# package -> the sub-packages it must never import
FORBIDDEN = {
    "session": {"agent", "providers", "notebook", "testing"},
    "providers": {"agent", "notebook", "session", "testing"},
    "agent": {"notebook", "testing"},
    "notebook": {"testing"},
    "<top>": {"session", "agent", "providers", "notebook", "testing"},
}


@dataclass(frozen=True)
class Source:
    module: str  # dotted name, e.g. codetether_magics.session.session
    is_package: bool  # an __init__.py
    text: str


def package_sources(root: Path = ROOT) -> list[Source]:
    sources = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root.parent).with_suffix("")
        parts = list(relative.parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        sources.append(Source(".".join(parts), is_package, path.read_text(encoding="utf-8")))
    return sources


def _resolve(source: Source, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    base = source.module.split(".")
    if not source.is_package:
        base.pop()
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join([*base, name] if name else base)


def _type_only_nodes(tree: ast.AST) -> set[int]:
    """The ids of import nodes under ``if TYPE_CHECKING:`` (never run: no cycle, but still an arrow)."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            inside |= {id(child) for stmt in node.body for child in ast.walk(stmt)}
    return inside


def imports_of(source: Source, known: set[str], *, type_only: bool = True) -> set[str]:
    """The modules of the package that ``source`` imports (any form, anywhere in the file).

    ``type_only=False`` leaves out the imports under ``if TYPE_CHECKING:``.
    """
    found: set[str] = set()
    tree = ast.parse(source.text)
    skip = set() if type_only else _type_only_nodes(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(source, node.level, node.module)
            # `from pkg import sub` imports the module pkg.sub when there is one
            targets = [f"{target}.{a.name}" if f"{target}.{a.name}" in known else target for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known and "." in target:
                target = target.rsplit(".", 1)[0]  # `import a.b.c` of a name inside a module
            if target in known and target != source.module:
                found.add(target)
    return found


def import_graph(sources: list[Source], *, type_only: bool = True) -> dict[str, set[str]]:
    known = {source.module for source in sources}
    return {source.module: imports_of(source, known, type_only=type_only) for source in sources}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected group of modules (Tarjan), as a readable path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "<root>"
    return parts[1] if len(parts) > 2 or parts[1] in SUBPACKAGES else "<top>"


def arrow_violations(graph: dict[str, set[str]]) -> list[str]:
    problems = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            source_layer, target_layer = layer(module), layer(target)
            if target_layer == "<root>":
                problems.append(f"{module} imports the package root {target} (it imports everything lazily)")
            elif target_layer in FORBIDDEN.get(source_layer, set()):
                problems.append(f"{module} imports {target}: {source_layer}/ must not import {target_layer}/")
    return problems


def first_docstring(text: str) -> str:
    return ast.get_docstring(ast.parse(text)) or ""


def size_violations(sources: list[Source]) -> list[str]:
    problems = []
    for source in sources:
        if source.module in SIZE_EXEMPT:
            continue
        lines = source.text.count("\n") + 1
        if lines > MAX_LINES and LONG_REASON not in first_docstring(source.text):
            problems.append(f"{source.module} has {lines} lines (over {MAX_LINES}) and no '{LONG_REASON}' reason "
                            "in its docstring: split it or say why")
    return problems


# -- the package as it is -------------------------------------------------------------


@pytest.fixture(scope="module")
def sources() -> list[Source]:
    found = package_sources()
    assert len(found) > 40, f"found only {len(found)} modules under {ROOT}"
    return found


def test_no_import_cycles(sources):
    assert find_cycles(import_graph(sources)) == []  # type-only imports included


def test_imports_point_one_way(sources):
    assert arrow_violations(import_graph(sources)) == []


def test_no_module_is_too_long_without_a_reason(sources):
    assert size_violations(sources) == []


def test_the_checker_sees_the_known_arrows(sources):
    graph = import_graph(sources)
    assert f"{PACKAGE}.messages" in graph[f"{PACKAGE}.providers.base"]
    assert f"{PACKAGE}.session.session" in graph[f"{PACKAGE}.agent.loop"]
    assert f"{PACKAGE}.agent.loop" in graph[PACKAGE]  # the prompt door: a lazy import in the root


# -- planted violations: each rule must fail -----------------------------------------------


def _plant(*modules: tuple[str, str]) -> list[Source]:
    return [Source(name, name == PACKAGE, text) for name, text in modules]


def test_a_lazy_cycle_is_found():
    planted = _plant(
        (f"{PACKAGE}.session.a", "from . import b\n"),
        (f"{PACKAGE}.session.b", "def f():\n    from .c import x\n"),
        (f"{PACKAGE}.session.c", f"import {PACKAGE}.session.a\n"),
        (f"{PACKAGE}.session.d", "from .a import y\n"),
    )
    assert find_cycles(import_graph(planted, type_only=False)) == [
        [f"{PACKAGE}.session.a", f"{PACKAGE}.session.b", f"{PACKAGE}.session.c"]
    ]


def test_a_type_only_import_is_an_arrow_and_counts_in_a_cycle():
    planted = _plant(
        (f"{PACKAGE}.session.a", "from . import b\n"),
        (f"{PACKAGE}.session.b", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n"
                                 "    from ..providers import registry\n"),
        (f"{PACKAGE}.providers.registry", ""),
    )
    assert find_cycles(import_graph(planted, type_only=False)) == []  # without the type-only arrow: none
    assert find_cycles(import_graph(planted)) == [[f"{PACKAGE}.session.a", f"{PACKAGE}.session.b"]]
    assert arrow_violations(import_graph(planted)) == [
        f"{PACKAGE}.session.b imports {PACKAGE}.providers.registry: session/ must not import providers/"
    ]


def test_an_arrow_against_the_direction_is_found_in_both_forms():
    planted = _plant(
        (f"{PACKAGE}.session.store", "def save():\n    from ..agent.loop import run_prompt\n"),
        (f"{PACKAGE}.providers.wire", f"import {PACKAGE}.session.store\n"),
        (f"{PACKAGE}.agent.loop", "from ..notebook import view\nfrom ..messages import Message\n"),
        (f"{PACKAGE}.notebook.view", "from ..testing import fake\n"),
        (f"{PACKAGE}.testing.fake", "from ..notebook import view\n"),
        (f"{PACKAGE}.messages", "from .session import store\n"),
    )
    assert arrow_violations(import_graph(planted)) == [
        f"{PACKAGE}.agent.loop imports {PACKAGE}.notebook.view: agent/ must not import notebook/",
        f"{PACKAGE}.messages imports {PACKAGE}.session.store: <top>/ must not import session/",
        f"{PACKAGE}.notebook.view imports {PACKAGE}.testing.fake: notebook/ must not import testing/",
        f"{PACKAGE}.providers.wire imports {PACKAGE}.session.store: providers/ must not import session/",
        f"{PACKAGE}.session.store imports {PACKAGE}.agent.loop: session/ must not import agent/",
    ]


def test_importing_the_package_root_is_found():
    planted = _plant((PACKAGE, ""), (f"{PACKAGE}.agent.loop", f"from {PACKAGE} import Session\n"))
    assert arrow_violations(import_graph(planted)) == [
        f"{PACKAGE}.agent.loop imports the package root {PACKAGE} (it imports everything lazily)"
    ]


def test_a_long_module_needs_a_reason(tmp_path):
    package = tmp_path / PACKAGE
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "long.py").write_text('"""Many lines."""\n' + "x = 1\n" * MAX_LINES)
    (package / "explained.py").write_text('"""Many lines.\n\nLong: one table.\n"""\n' + "x = 1\n" * MAX_LINES)
    assert size_violations(package_sources(package)) == [
        f"{PACKAGE}.long has {MAX_LINES + 2} lines (over {MAX_LINES}) and no 'Long:' reason "
        "in its docstring: split it or say why"
    ]


# -- what the code cites must be in the repository ----------------------------------------

OUTSIDE_CITATIONS = re.compile(r"SPEC(?:\.md| section)|FIELD-NOTES|ARCHITECTURE\.md|\bthe seed\b|\bseed's\b")


def outside_citations(sources: list[Source]) -> list[str]:
    return [f"{source.module}:{number}: {line.strip()}"
            for source in sources
            for number, line in enumerate(source.text.splitlines(), 1)
            if OUTSIDE_CITATIONS.search(line)]


def test_no_comment_cites_a_file_outside_the_repository(sources):
    assert outside_citations(sources) == []
    assert (ROOT.parent / "docs" / "design.md").is_file()  # what they cite instead


def test_an_outside_citation_is_found():
    planted = _plant((f"{PACKAGE}.session.a", "x = 1  # SPEC section 3\n# as in the seed\n# fine: seeded random\n"))
    assert outside_citations(planted) == [f"{PACKAGE}.session.a:1: x = 1  # SPEC section 3",
                                          f"{PACKAGE}.session.a:2: # as in the seed"]

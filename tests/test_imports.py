"""Every runtime module imports on its own, and the runtime's imports hold no circle.

An import circle can hide for a long time: whichever module of the circle is
imported first decides whether the others find their names yet. So each
module is imported alone in a fresh interpreter, and the import graph read
from the source (imports at module level and inside functions alike) must
have no cycle, whatever order a program happens to import things in.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

RUNTIME = Path(__file__).resolve().parents[1] / "runtime"
PACKAGE = "edgeclf"
#: modules that import an optional extra at module level, and the module that extra provides
NEEDS = {
    "edgeclf.serve.app": "starlette",
    "edgeclf.serve.server": "uvicorn",
}


def runtime_modules() -> dict[str, Path]:
    """Module name -> source file, for every importable module of the runtime."""
    out = {}
    for path in sorted(RUNTIME.rglob("*.py")):
        rel = path.relative_to(RUNTIME).with_suffix("")
        parts = list(rel.parts)
        if parts[0] in ("_pyinstaller", "models") or parts[-1] == "__main__":
            continue  # PyInstaller hooks are files PyInstaller execs, not modules; models hold data
        if not all(p.isidentifier() for p in parts):
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join([PACKAGE, *parts])] = path
    return out


#: Run in one fresh interpreter: numpy and onnxruntime (not edgeclf) are imported once, then one
#: forked child per module imports that module with no edgeclf module loaded before it.
FORK_EACH = """
import importlib, os, sys, traceback
for heavy in ("numpy", "onnxruntime"):
    try:
        importlib.import_module(heavy)
    except ImportError:
        pass
assert not any(m == "edgeclf" or m.startswith("edgeclf.") for m in sys.modules)
children = {}
for name in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(name)
        except BaseException:
            print(name, "|", traceback.format_exc().strip().splitlines()[-1], flush=True)
            os._exit(1)
        os._exit(0)
    children[pid] = name
failed = [children[pid] for pid in children if os.waitpid(pid, 0)[1] != 0]
print("FAILED", failed)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks one child per module")
def test_every_module_imports_alone_in_a_fresh_interpreter():
    modules = [
        m for m in runtime_modules() if m not in NEEDS or importlib.util.find_spec(NEEDS[m]) is not None
    ]
    assert len(modules) > 20  # the walk found the runtime
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    r = subprocess.run(
        [sys.executable, "-c", FORK_EACH, *modules], capture_output=True, text=True, env=env, timeout=300
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("FAILED []"), r.stdout


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, except those under ``if TYPE_CHECKING:``."""
    found = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the runtime modules it imports (a package's ``__init__`` importing its own
    submodules, to re-export them, is not an edge)."""
    modules = runtime_modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        package = name if is_pkg else name.rpartition(".")[0]
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - node.level + 1]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                # `from pkg import sub` imports the submodule; `from mod import name` the module
                targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod for a in node.names]
            for target in targets:
                while target and target not in modules:  # `import edgeclf.x.y` -> the known module
                    target = target.rpartition(".")[0]
                if not target or target == name:
                    continue
                if is_pkg and target.startswith(name + "."):
                    continue  # re-export through the package's __init__
                graph[name].add(target)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circle_in_the_runtime():
    graph = import_graph()
    cycles = find_cycles(graph)
    detail = [{m: sorted(graph[m] & set(c)) for m in c} for c in cycles]
    assert not cycles, f"import circles (module -> the members of its circle it imports): {detail}"


def test_the_cycle_finder_sees_a_circle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []

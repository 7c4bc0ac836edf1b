"""The code layout of DESIGN.md, checked from the import graph: no import cycle (module level
or inside functions), no wing importing a stage, and one home for each GPU concern."""

from __future__ import annotations

import ast
from pathlib import Path

import advisor_repro

ROOT = Path(advisor_repro.__file__).parent
WINGS = {"data", "training", "evaluation", "judges", "audits", "report", "release", "hardware",
         "bench", "models", "smokedata"}


def _modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = ast.parse(path.read_text(encoding="utf-8"))
    return out


def _imports(name: str, tree: ast.Module, known: set[str]) -> set[str]:
    """Every advisor_repro module `name` imports, anywhere in its body."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from pkg import mod` imports the submodule; `from pkg import name`, the package
            subs = {f"{node.module}.{a.name}" for a in node.names} & known
            found |= subs
            if len(subs) < len(node.names):
                found.add(node.module)
    return {m for m in found if m in known and m != name}


def graph() -> dict[str, set[str]]:
    mods = _modules()
    return {name: _imports(name, tree, set(mods)) for name, tree in mods.items()}


def _cycle(g: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(g[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(g):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_import_graph_has_no_cycle():
    assert _cycle(graph()) is None


def test_the_cycle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
    # a package exporting a submodule that imports the package back is a cycle too
    assert _cycle({"p": {"p.m"}, "p.m": {"p"}}) == ["p", "p.m", "p"]


def test_no_wing_imports_a_stage():
    wings = {name.split(".")[1] for name in graph() if name.count(".") > 1}
    assert wings - {"stages", "cli"} == WINGS  # a new wing is named here
    offenders = [
        f"{name} imports {dep}"
        for name, deps in graph().items()
        for dep in deps
        if dep.startswith("advisor_repro.stages")
        and name.split(".")[1] in WINGS
    ]
    assert offenders == []


def _calls(attr: str) -> set[str]:
    hits = set()
    for name, tree in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                f = node.func
                called = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
                if called == attr:
                    hits.add(name)
    return hits


def test_one_module_caps_vram_and_builds_the_nf4_config():
    assert _calls("set_per_process_memory_fraction") == {"advisor_repro.hardware.gpu"}
    assert _calls("BitsAndBytesConfig") == {"advisor_repro.hardware.gpu"}


def test_one_module_reads_library_versions_and_defines_the_byte_unit():
    defs = {name for name, tree in _modules().items() for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef) and node.name == "library_versions"}
    assert defs == {"advisor_repro.manifest"}
    gib = {name for name, tree in _modules().items() for node in ast.walk(tree)
           if isinstance(node, ast.Assign)
           and any(getattr(t, "id", None) == "GIB" for t in node.targets)}
    assert gib == {"advisor_repro.hardware.gpu"}

"""Imports go one way: store -> counts -> fit / diagnostics -> figure.

Every module of the package is parsed (no import is executed) and every import it makes,
at the top or inside a function, is checked against the layer table below. The core never
reaches the LLM layer, the agents, the plots or the command line; the LLM layer never
reaches the agents; nothing but the command line imports ``reproduce``; nothing imports
``cli``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import dbnb

PACKAGE = Path(dbnb.__file__).resolve().parent

#: Layer of each module, by dotted-name prefix (the longest prefix wins).
LAYERS = {
    "dbnb": "index",
    "dbnb.counts": "core", "dbnb.kernels": "core", "dbnb.graph": "core",
    "dbnb.action": "core", "dbnb.newton": "core", "dbnb.potential": "core",
    "dbnb.feature_potential": "core", "dbnb.schedules": "core", "dbnb.synthetic": "core",
    "dbnb.datasets": "core", "dbnb.symdata": "core", "dbnb.letter": "core",
    "dbnb.authors": "core", "dbnb.comparison": "core",
    "dbnb.likelihood": "core", "dbnb.hierarchy": "core", "dbnb.hodge": "core",
    "dbnb.bootstrap": "core", "dbnb.verdict": "core", "dbnb.calibration": "core",
    "dbnb.selinv": "core", "dbnb.elimination": "core", "dbnb.bounded": "core",
    "dbnb.diagnostics": "diagnostics",
    "dbnb.plots": "plots",
    "dbnb.llm": "llm",
    # deprecated aliases of the old flat layout (one release): they re-export their new homes
    "dbnb.balance": "alias", "dbnb.exact": "alias", "dbnb.store": "alias",
    "dbnb.agents": "agents",
    "dbnb.sources": "sources",
    "dbnb.reproduce": "reproduce",
    "dbnb.notebooks": "notebooks",
    "dbnb.cli": "cli",
}  # fmt: skip

#: What each layer may import (besides itself).
ALLOWED = {
    "core": {"core"},
    "diagnostics": {"core"},
    "plots": {"core", "diagnostics"},
    "llm": {"core"},
    "agents": {"core", "llm"},
    "sources": {"core", "diagnostics", "llm", "agents"},
    "reproduce": {"core", "diagnostics", "plots", "llm", "agents", "sources"},
    "notebooks": set(),
    "cli": {"core", "diagnostics", "plots", "llm", "agents", "sources", "reproduce",
            "notebooks"},
    "index": {"core", "diagnostics", "plots", "llm", "agents", "sources"},
    "alias": {"core", "diagnostics", "llm", "agents"},
}


def layer(name: str) -> str:
    best = max((p for p in LAYERS if name == p or name.startswith(p + ".")), key=len)
    return LAYERS[best]


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path) -> list[tuple[int, str]]:
    """``(line, dotted module)`` of every dbnb import in the file, wherever it sits."""
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "dbnb"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                mod = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module
                                                                      else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "dbnb":
                continue
            # "from . import plots" imports a module, not a name of the package
            subs = [f"{mod}.{a.name}" for a in node.names
                    if f"{mod}.{a.name}" in ALL_MODULES]
            out += [(node.lineno, s) for s in subs] or [(node.lineno, mod)]
    return out


ALL_MODULES = modules()


def test_every_module_has_a_layer():
    assert all(layer(m) for m in ALL_MODULES)


@pytest.mark.parametrize("name", sorted(ALL_MODULES))
def test_imports_follow_the_layering(name):
    mine = layer(name)
    bad = []
    for line, target in imports(name, ALL_MODULES[name]):
        theirs = layer(target)
        if theirs != mine and theirs not in ALLOWED[mine]:
            bad.append(f"line {line}: {name} ({mine}) imports {target} ({theirs})")
    assert not bad, "\n".join(bad)


def test_the_checker_sees_function_local_and_relative_imports(tmp_path):
    """The rule would be useless if it missed imports hidden in functions."""
    p = tmp_path / "mod.py"
    p.write_text("def f():\n    from ..plots import fig_pairs\n    import dbnb.cli\n"
                 "    from . import word\n")
    found = [t for _, t in imports("dbnb.agents.run", p)]
    assert found == ["dbnb.plots", "dbnb.cli", "dbnb.agents.word"]
    assert layer("dbnb.plots") not in ALLOWED["agents"]
    assert layer("dbnb.agents.symbolic.agent") == "agents" and layer("dbnb.llm.store") == "llm"

"""The house plan (../shared/DESIGN.md) as a test: which phototag module may import which, and
no import circle, counting the imports made inside functions too."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "phototag"


def _module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path):
    """Every module a file imports (absolute names), wherever in the file the import is."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            module = node.module or ""
            target = ".".join(p for p in (base if node.level else "", module) if p)
            found.add(target)
            # `from . import store`: the names may be modules themselves
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
GRAPH = {name: {m for m in _imports(path) if m in MODULES and m != name}
         for name, path in MODULES.items()}


def _reaches(start):
    seen, todo = set(), [start]
    while todo:
        for nxt in GRAPH[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _package_init(name):
    """A package's __init__ importing its own modules is not a circle."""
    return name.count(".") >= 1 and MODULES[name].name == "__init__.py"


def test_no_module_imports_one_that_imports_it_back():
    circles = sorted(
        f"{a} ↔ {b}" for a in GRAPH for b in GRAPH[a]
        if a < b and a in _reaches(b) and not (_package_init(a) or _package_init(b))
        and not (b.startswith(a + ".") or a.startswith(b + "."))
    )
    assert not circles, "import circles: " + ", ".join(circles)


def _all_imports(prefix):
    return {(name, m) for name, path in MODULES.items() if name.startswith(prefix)
            for m in _imports(path)}


@pytest.mark.parametrize("layer, forbidden", [
    ("phototag.library", ("torch", "phototag.store", "phototag.vision", "phototag.pipeline",
                          "phototag.people")),
    ("phototag.store", ("torch", "phototag.library", "phototag.vision", "phototag.pipeline")),
    ("phototag.people", ("torch", "phototag.vision", "phototag.pipeline", "phototag.stages")),
    ("phototag.vision", ("sqlite3", "phototag.store", "phototag.train", "phototag.pipeline")),
    ("phototag.train", ("phototag.pipeline", "phototag.stages", "phototag.local_runner",
                        "phototag.ray_runner")),
    ("phototag.stages", ("phototag.pipeline", "phototag.local_runner", "phototag.ray_runner")),
    ("phototag.labels", ("phototag.",)),
])
def test_each_layer_imports_only_what_it_may(layer, forbidden):
    wrong = sorted(f"{name} imports {m}" for name, m in _all_imports(layer)
                   if any(m == f or m.startswith(f.rstrip(".") + ".")
                                        or (f.endswith(".") and m.startswith(f)) for f in forbidden))
    assert not wrong, "; ".join(wrong)


def test_the_check_sees_imports_inside_functions():
    assert "phototag.local_runner" in GRAPH["phototag.pipeline"]  # imported in run_index
    assert "torch" in _imports(MODULES["phototag.local_runner"])

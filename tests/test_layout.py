"""The house rules of the layout, checked on the source: sizes, floors, no circles, nothing prints.

Every rule is a function of a package folder returning its violations, so that each one is also
run on a copy of the package with a violation planted in it, and must report it.
"""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mlflow_tune"
MAX_LINES = 350

# Floors, top to bottom: a room imports only rooms on floors below its own (data flows one way:
# cli -> study -> stages/samplers -> config -> executors -> trials -> ... -> training). Rooms on
# one floor do not import each other. Modules at the package's top level are rooms of their own.
FLOORS: tuple[tuple[str, ...], ...] = (
    ("cli",),
    ("study",),                          # a whole search as one parent run; plugins/ sit beside cli
    ("stages", "samplers"),              # what a stage searches; what to try next
    ("config",),                         # the tune file, validated
    ("executors", "integrations"),       # where trials run; a framework's Trainer as a trial
    ("trials", "api", "registry"),       # one trial; one training run; promotion
    ("reports", "diagnostics"),          # read runs back: figures and the report; labels and advice
    ("tracking",),                       # the only code that writes to MLflow
    ("training", "pruners"),             # pure PyTorch; pure stopping rules
    ("faults", "interrupts"),
)
# Libraries a room must not import at all (lazily included).
NEVER = {
    "training": ("mlflow",),
    "diagnostics": ("torch",),
    "pruners": ("mlflow", "torch"),
    **{room: ("torch",) for room in ("study", "stages", "samplers", "config")},
}


def modules(root: Path = PACKAGE) -> dict[str, Path]:
    out = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports(path: Path, prefix: str = "mlflow_tune", type_checking: bool = False) -> set[str]:
    """Modules (of this package, by default) that `path` imports: at run time (lazy imports
    inside functions count), and with `type_checking` those under `if TYPE_CHECKING:` too."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    if not type_checking:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skip.update(id(n) for child in node.body for n in ast.walk(child))
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == prefix or node.module.startswith(prefix + ".") or not prefix:
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if not prefix or a.name.split(".")[0] == prefix)
    return found


def graph(root: Path = PACKAGE, type_checking: bool = False) -> dict[str, set[str]]:
    mods = modules(root)
    g = {name: {m for m in imports(path, type_checking=type_checking) if m in mods} for name, path in mods.items()}
    for name, targets in g.items():
        # `from pkg import submodule` inside pkg is no circle (the package is mid-import by design); a
        # submodule imported from outside its package runs the package's __init__ first.
        for target in list(targets):
            parent = target.rpartition(".")[0]
            while parent.count(".") >= 1 and not (name + ".").startswith(parent + "."):
                targets.add(parent)
                parent = parent.rpartition(".")[0]
        targets -= {t for t in targets if (name + ".").startswith(t + ".")}
    return g


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def floor(name: str) -> int:
    return next(i for i, rooms in enumerate(FLOORS) if name in rooms)


def circles(root: Path = PACKAGE) -> list[str]:
    """Import circles between modules, counting imports under TYPE_CHECKING: a circle a type checker
    must break is one a reader must untangle too."""
    g = graph(root, type_checking=True)
    seen: dict[str, int] = {}
    stack: list[str] = []
    found: list[str] = []

    def visit(node: str) -> None:
        seen[node] = 1
        stack.append(node)
        for nxt in sorted(g[node]):
            if seen.get(nxt) == 1:
                found.append(" -> ".join([*stack[stack.index(nxt):], nxt]))
            elif nxt not in seen:
                visit(nxt)
        stack.pop()
        seen[node] = 2

    for node in sorted(g):
        if node not in seen:
            visit(node)
    return found


def climbs(root: Path = PACKAGE) -> list[str]:
    """Run-time imports of a room on the same floor or above (TYPE_CHECKING imports are exempt)."""
    out = []
    for name, targets in graph(root).items():
        for target in sorted(targets):
            here, there = room(name), room(target)
            if here and there and here != there and floor(there) <= floor(here):
                out.append(f"{name} imports {target} ({there} is not below {here})")
    return out


def forbidden_libraries(root: Path = PACKAGE) -> list[str]:
    out = []
    for name, path in modules(root).items():
        for lib in NEVER.get(room(name), ()):
            out += [f"{name} imports {m}" for m in sorted(imports(path, prefix="")) if m.split(".")[0] == lib]
    return out


def unplaced_rooms(root: Path = PACKAGE) -> list[str]:
    placed = {r for rooms in FLOORS for r in rooms}
    return sorted({room(name) for name in modules(root) if room(name) and room(name) not in placed})


def oversized(root: Path = PACKAGE) -> dict[str, int]:
    sizes = {str(p.relative_to(root)): len(p.read_text().splitlines()) for p in root.rglob("*.py")}
    return {name: n for name, n in sizes.items() if n > MAX_LINES}


def printing(root: Path = PACKAGE) -> list[str]:
    call = re.compile(r"(?<![\w.])print\(")
    return [f"{p.relative_to(root)}:{i}" for p in root.rglob("*.py") if "cli" not in p.relative_to(root).parts
            for i, line in enumerate(p.read_text().splitlines(), 1) if call.search(line)]


RULES = {"circles": circles, "climbs": climbs, "libraries": forbidden_libraries, "unplaced": unplaced_rooms,
         "size": oversized, "print": printing}


@pytest.mark.parametrize("rule", sorted(RULES))
def test_the_package_keeps_the_rule(rule: str) -> None:
    assert not RULES[rule](), f"{rule}: {RULES[rule]()}"


def _plant(tmp_path: Path, module: str, text: str) -> Path:
    root = tmp_path / "mlflow_tune"
    shutil.copytree(PACKAGE, root, ignore=shutil.ignore_patterns("__pycache__"))
    path = root.joinpath(*module.split(".")[1:]).with_suffix(".py")
    if not path.exists():
        path = path.with_suffix("") / "__init__.py"
    path.write_text(path.read_text() + "\n" + text + "\n")
    return root


def _first_module(name: str) -> str:
    return sorted(m for m in modules() if room(m) == name and m.count(".") == 2)[0] \
        if (PACKAGE / name).is_dir() else f"mlflow_tune.{name}"


CLIMBS = [(rooms[0], FLOORS[i - 1][0]) for i, rooms in enumerate(FLOORS) if i > 0] + [("samplers", "stages")]


@pytest.mark.parametrize(("below", "above"), CLIMBS)
def test_an_import_up_a_floor_is_caught(tmp_path: Path, below: str, above: str) -> None:
    target = _first_module(above)
    root = _plant(tmp_path, _first_module(below), f"def _planted() -> None:\n    import {target}  # noqa\n")
    assert any(f"imports {target} " in line for line in climbs(root)), climbs(root)


@pytest.mark.parametrize(("name", "lib"), [(name, lib) for name, libs in NEVER.items() for lib in libs])
def test_a_forbidden_library_is_caught(tmp_path: Path, name: str, lib: str) -> None:
    root = _plant(tmp_path, _first_module(name), f"import {lib}  # noqa")
    assert any(line.endswith(f"imports {lib}") for line in forbidden_libraries(root))


def test_a_circle_inside_a_room_is_caught_even_for_type_checking_only(tmp_path: Path) -> None:
    # records is imported by the runner; the runner imported back only for a type annotation
    planted = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from mlflow_tune.trials.runner import run_trial"
    root = _plant(tmp_path, "mlflow_tune.trials.records", planted)
    assert "mlflow_tune.trials.records -> mlflow_tune.trials.runner -> mlflow_tune.trials.records" in circles(root)


def test_a_new_room_must_be_given_a_floor(tmp_path: Path) -> None:
    root = _plant(tmp_path, "mlflow_tune.faults", "")
    (root / "attic").mkdir()
    (root / "attic" / "__init__.py").write_text('"""Nowhere yet."""\n')
    assert unplaced_rooms(root) == ["attic"]


def test_size_and_print_violations_are_caught(tmp_path: Path) -> None:
    root = _plant(tmp_path, "mlflow_tune.pruners.median", "\n" * MAX_LINES + "print('hi')")
    assert "pruners/median.py" in oversized(root)
    assert any(line.startswith("pruners/median.py:") for line in printing(root))


def test_every_subpackage_is_installed() -> None:
    """pyproject lists the packages by hand (plugins/ installs under another name): none may be missing."""
    import tomllib

    listed = set(tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(PACKAGE.parent).parts) for p in PACKAGE.rglob("__init__.py")}
    assert found | {"mlflow_tune_plugins"} == listed

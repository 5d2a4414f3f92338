"""The suite's own wiring: `make test` (what CI runs) runs the default suite and then every slow test by name, so a
test marked slow must be in the Makefile's SLOW_TESTS or it would never run."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _is_slow_mark(node: ast.expr) -> bool:
    """``pytest.mark.slow`` or ``pytest.mark.slow(...)``."""
    target = node.func if isinstance(node, ast.Call) else node
    return (isinstance(target, ast.Attribute) and target.attr == "slow" and isinstance(target.value, ast.Attribute)
            and target.value.attr == "mark")


def slow_tests() -> set[str]:
    """``tests/FILE.py::name`` of every test function (or class) decorated with ``@pytest.mark.slow``."""
    found = set()
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "pytestmark" for t in node.targets):
                marks = node.value.elts if isinstance(node.value, (ast.List, ast.Tuple)) else [node.value]
                assert not any(_is_slow_mark(m) for m in marks), f"{path.name}: mark single tests slow, by name"
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and any(map(_is_slow_mark, node.decorator_list)):
                found.add(f"tests/{path.name}::{node.name}")
    return found


def makefile_slow_tests() -> set[str]:
    """The names in the Makefile's ``SLOW_TESTS = ...`` (backslash-continued lines)."""
    text = (ROOT / "Makefile").read_text(encoding="utf-8").replace("\\\n", " ")
    match = re.search(r"^SLOW_TESTS\s*=(.*)$", text, re.M)
    assert match, "the Makefile has no SLOW_TESTS list"
    return set(match.group(1).split())


def test_make_test_runs_every_slow_test_by_name():
    slow, listed = slow_tests(), makefile_slow_tests()
    assert slow, "no slow tests found: the AST scan is broken"
    assert slow == listed, f"marked slow but not in SLOW_TESTS: {sorted(slow - listed)}; " \
                           f"in SLOW_TESTS but not marked slow: {sorted(listed - slow)}"
    for name in listed:
        file, test = name.split("::")
        assert re.search(rf"^def {test}\(", (ROOT / file).read_text(encoding="utf-8"), re.M), name


def test_make_test_runs_the_default_suite_then_the_slow_tests():
    recipe = (ROOT / "Makefile").read_text(encoding="utf-8").split("\ntest:", 1)[1].split("\n\n", 1)[0]
    lines = [line.strip() for line in recipe.splitlines()[1:] if line.strip()]
    assert lines == ["bash scripts/setup.sh test", "$(PYTEST) -n 2 --dist worksteal", "$(PYTEST) -m slow $(SLOW_TESTS)"]
    assert "-m 'not slow'" in (ROOT / "pyproject.toml").read_text(encoding="utf-8")  # the default deselects them

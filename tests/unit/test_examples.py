"""The examples need nothing from the repository: only livekit_py, numpy, PyAV and the stdlib.

tests/integration/test_examples.py runs each one against the server; this reads their
imports, so that a wheel user can run them, and checks each is documented.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SCRIPTS = sorted(p for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))
# what an installed livekit-py brings (numpy and PyAV are its dependencies), the module
# the examples share, and livekit-api, imported only when it is installed
ALLOWED = {"livekit_py", "numpy", "av", "_common", "livekit"}


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def test_there_are_examples() -> None:
    assert len(SCRIPTS) >= 8, SCRIPTS


@pytest.mark.parametrize("path", [*SCRIPTS, EXAMPLES / "_common.py"], ids=lambda p: p.name)
def test_an_example_imports_only_the_package_and_its_dependencies(path: Path) -> None:
    outside = {
        name
        for name in imports(path)
        if name.split(".")[0] not in ALLOWED and name.split(".")[0] not in sys.stdlib_module_names
    }
    assert not outside, f"{path.name} imports {sorted(outside)}"
    livekit = {name for name in imports(path) if name.split(".")[0] == "livekit"}
    allowed = {"livekit.api"} if path.name == "_common.py" else set()
    assert livekit <= allowed, f"{path.name}: only livekit-api, from _common ({livekit})"


def test_only_the_shared_module_uses_livekit_api() -> None:
    for path in SCRIPTS:
        assert "livekit" not in {n.split(".")[0] for n in imports(path)}, path.name


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_every_example_is_documented_and_says_how_to_run_it(path: Path) -> None:
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    assert f"python examples/{path.name}" in doc, f"{path.name}: no usage line in its docstring"
    readme = (EXAMPLES / "README.md").read_text()
    assert f"({path.name})" in readme, f"examples/README.md does not link {path.name}"


def test_the_notebook_is_clean_and_its_cells_compile() -> None:
    notebook = json.loads((EXAMPLES / "notebook.ipynb").read_text())
    assert notebook["nbformat"] == 4
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert code, "no code cells"
    for cell in code:
        # committed without outputs (they would hold tokens)
        assert cell["outputs"] == [] and cell["execution_count"] is None
        source = "".join(cell["source"])
        tree = compile(
            source, "<cell>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT | ast.PyCF_ONLY_AST
        )
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                top = node.module.split(".")[0]
                assert top in ALLOWED or top in sys.stdlib_module_names, node.module
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    top = alias.name.split(".")[0]
                    assert top in ALLOWED or top in sys.stdlib_module_names, alias.name

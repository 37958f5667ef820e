"""The Python in the README and docs/ imports what it says it imports (so the examples
cannot go stale unnoticed), and the commands it shows exist."""

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_the_python_examples_import_what_they_name(page):
    for block in python_blocks(page):
        tree = ast.parse(block)  # the example is valid Python
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert hasattr(module, alias.name), f"{page.name}: {node.module}.{alias.name}"
                    if alias.name in ("fit", "render"):  # the functions, not their modules
                        assert callable(getattr(module, alias.name))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    importlib.import_module(alias.name)


def test_the_command_lines_shown_use_commands_that_exist():
    from mhinr.app.cli import parser

    commands = set(parser()._subparsers._group_actions[0].choices)  # fit, render, info, …
    seen = set()
    for page in PAGES:
        for used in re.findall(r"(?:\$ |`)mhinr (\w+)", page.read_text()):
            assert used in commands, f"{page.name}: mhinr {used}"
            seen.add(used)
    assert {"fit", "render", "info", "serve"} <= seen  # the pages do show them

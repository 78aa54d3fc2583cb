"""The code stays ruff-clean (lint and format), as configured in pyproject.toml."""

import ast
import io
import re
import shutil
import subprocess
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]])
def test_ruff(command):
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (it is in the test extra)")
    run = subprocess.run(
        [ruff, *command, "dasklle", "tests", "examples"], cwd=ROOT, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr


PACKAGE = ROOT / "dasklle"
MAX_MODULE_LINES = 440  # "about 400": a module past it is probably two concepts
MAX_FUNCTION_LINES = 80
KERNELS = {"kernels.py"}  # numba kernels are written as one loop each, whatever their length
TIMING = re.compile(r"\b\d+(\.\d+)?\s?(s|ms|seconds|minutes)\b(?! *=)")


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _comments_and_docstrings(path: Path):
    """(line number, text) of every comment and docstring of a module."""
    source = path.read_text()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                yield body[0].lineno, value.value


def test_modules_are_small():
    long = {
        str(p.relative_to(ROOT)): n
        for p in _modules()
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, long


def test_functions_are_short():
    long = []
    for path in _modules():
        if path.name in KERNELS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} {length}")
    assert not long, long


def test_no_timings_in_comments_or_docstrings():
    quoted = [
        f"{path.relative_to(ROOT)}:{line}: {TIMING.search(text).group(0)}"
        for path in _modules()
        for line, text in _comments_and_docstrings(path)
        if TIMING.search(text)
    ]
    assert not quoted, quoted


def _keys(tree: dict, prefix: str = "") -> list[str]:
    keys = []
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            keys += _keys(value, f"{prefix}{key}.")
        elif not isinstance(value, dict):
            keys.append(f"{prefix}{key}")
    return keys


def test_every_setting_is_documented():
    from dasklle import config

    page = (ROOT / "docs" / "configuration.md").read_text()
    sections = config.defaults["dasklle"]
    missing = [
        key
        for key in _keys(sections)
        if f"`{key.rsplit('.', 1)[-1]}`" not in page or f"dasklle.{key.split('.')[0]}" not in page
    ]
    assert not missing, missing

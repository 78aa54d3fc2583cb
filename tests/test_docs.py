"""The documentation site builds offline with warnings as errors, and its pages are there."""

import importlib.util
import os
import re
import subprocess
import sys
from html import unescape
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

pytestmark = pytest.mark.skipif(
    any(
        importlib.util.find_spec(name) is None
        for name in ("sphinx", "myst_parser", "numpydoc", "pydata_sphinx_theme")
    ),
    reason="sphinx, myst-parser, numpydoc or pydata-sphinx-theme is not installed "
    "(they are in the docs and test extras)",
)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("html")
    run = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", DOCS, out],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return out


def test_api_and_configuration_pages(site):
    api = site / "api" / "generated" / "dasklle.LocallyLinearEmbedding.html"
    assert api.is_file()
    assert "inverse_transform" in api.read_text()
    assert "partition-rows" in (site / "configuration.html").read_text()


def test_command_line_page_is_the_real_help(site):
    """Each command's section shows what ``dasklle <command> --help`` prints now."""
    from dasklle.cli import COMMANDS

    page = " ".join(re.sub(r"<[^>]+>", "", unescape((site / "cli.html").read_text())).split())
    for command in ["", *COMMANDS]:
        run = subprocess.run(
            [sys.executable, "-m", "dasklle", *command.split(), "--help"],
            capture_output=True,
            text=True,
            env={**os.environ, "COLUMNS": "100"},
        )
        assert run.returncode == 0, run.stderr
        assert " ".join(run.stdout.split()) in page, f"dasklle {command} --help"

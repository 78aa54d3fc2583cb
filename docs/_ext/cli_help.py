"""``dasklle-help`` directive: the ``--help`` text of a ``dasklle`` command, taken from the parser.

``{dasklle-help} embed`` renders ``dasklle embed --help`` as a literal block at build time, at a
fixed width of ``WIDTH`` columns, so the command-line page always matches the installed code.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

WIDTH = 100


@contextmanager
def _columns(width: int):
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(width)
    try:
        yield
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved


def help_text(command: str | None = None, width: int = WIDTH) -> str:
    """``dasklle [command] --help`` as argparse prints it at ``width`` columns."""
    from dasklle.cli import build_parser

    with _columns(width):
        parser = build_parser()
        if command is None:
            return parser.format_help()
        subparsers = next(a for a in parser._actions if a.dest == "command")
        return subparsers.choices[command].format_help()


class DasklleHelp(SphinxDirective):
    optional_arguments = 1

    def run(self):
        command = self.arguments[0] if self.arguments else None
        text = help_text(command)
        block = nodes.literal_block(text, text, language="text")
        return [block]


def setup(app):
    app.add_directive("dasklle-help", DasklleHelp)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

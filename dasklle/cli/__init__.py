"""The ``dasklle`` command line (also ``python -m dasklle``).

One module per command, each with ``HELP``, ``add_arguments(parser)`` and ``run(args)``:

- ``embed``: a data file into a zarr store (and the fit and summary steps ``demo`` shares);
- ``demo``: a generated swiss roll, its store and a PNG;
- ``sweep``: the reconstruction error over a grid of n_neighbors x n_components;
- ``plot``: PNGs of a store;
- ``view``: an interactive HTML page of a store's embedding;
- ``info``: what a store holds;
- ``bench``: benchmark cases against scikit-learn (the harness is ``dasklle.bench``).

``common`` holds the flags several commands share, the scheduler set-up, the input and output
checks, and the "[dasklle] ..." progress lines on stderr. The command modules import dask, zarr
and scikit-learn inside ``run``, so that ``dasklle --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import bench, common, demo, embed, info, plot, sweep, view

# in the order `dasklle --help` lists them
COMMANDS = {
    "demo": demo,
    "embed": embed,
    "sweep": sweep,
    "plot": plot,
    "view": view,
    "info": info,
    "bench": bench,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dasklle",
        description="Locally Linear Embedding on Dask: chunked, out of core, scikit-learn "
        "compatible.",
        formatter_class=common.HelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, module in COMMANDS.items():
        command = commands.add_parser(
            name, help=module.HELP, description=module.HELP, formatter_class=common.HelpFormatter
        )
        module.add_arguments(command)
        command.set_defaults(func=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # results on stdout and progress on stderr stay in order when both go to one log file
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    try:
        with common.log_to_stderr(quiet=getattr(args, "quiet", False)):
            return args.func(args)
    except KeyboardInterrupt:  # Ctrl-C: one line, the shell's exit code for SIGINT
        print(f"dasklle {args.command}: {common.interrupted(args)}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except (ValueError, TypeError, NotImplementedError, FileNotFoundError) as exc:
        print(f"dasklle {args.command}: error: {exc}", file=sys.stderr)
        return 2

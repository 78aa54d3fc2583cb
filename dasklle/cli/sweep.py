"""``dasklle sweep``: the reconstruction error over a grid of n_neighbors x n_components, with
the neighbor graph computed once; a CSV table, a heatmap and a record in a zarr store."""

from __future__ import annotations

import argparse

from . import common

HELP = "reconstruction error over a grid of n_neighbors x n_components (kNN computed once)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_input_flags(parser)
    parser.add_argument("--n-neighbors", default="5,8,12,20", help="comma-separated k values.")
    parser.add_argument("--n-components", default="2,4,6,8,10", help="comma-separated d values.")
    parser.add_argument(
        "--out",
        default="sweep.zarr",
        help="zarr store to record the sweep in (an embedding already there is kept); the CSV "
        "table and the heatmap PNG are written next to it.",
    )
    common.add_solver_flags(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress reports.")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="empty an existing dasklle store at --out (its embedding too) before recording the "
        "sweep (a file or a folder dasklle did not write is never deleted).",
    )
    common.add_scheduler_flags(parser)


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from ..io.store import clear_store, update_attributes
    from ..plotting import plot_sweep
    from ..sweep import as_grid, reconstruction_error_grid, write_csv

    ks = parse_grid(args.n_neighbors, "--n-neighbors")
    ds = parse_grid(args.n_components, "--n-components")
    source = common.open_input(args)
    common.check_out(args)  # no input check: a sweep is recorded beside any embedding of the store
    with common.scheduler(args) as where:
        print(f"sweep on {where}: n_neighbors {ks} x n_components {ds}")
        rows = reconstruction_error_grid(
            source, ks, ds, **common.solver_options(args), verbose=not args.quiet
        )
    prefix = common.prefix(args.out)
    write_csv(rows, prefix + ".csv")
    plot_sweep(*as_grid(rows), prefix + ".png")
    if args.overwrite:
        clear_store(args.out, name="--out")
    update_attributes(args.out, {"sweep": [asdict(r) for r in rows]})
    for r in rows:
        print(f"  k={r.n_neighbors:3d} d={r.n_components:3d}  error {r.reconstruction_error:.3e}")
    print(f"  table: {prefix}.csv, heatmap: {prefix}.png, recorded in {args.out}")
    return 0


def parse_grid(text: str, name: str) -> list[int]:
    """A comma-separated list of integers, refused with a message naming the flag."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(
            f"{name} must be a comma-separated list of integers; got {text!r}."
        ) from None
    if not values:
        raise ValueError(f"{name} must list at least one integer; got {text!r}.")
    return values

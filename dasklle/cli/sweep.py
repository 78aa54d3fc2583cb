"""``dasklle sweep``: the reconstruction error and a sampled neighborhood score over a grid of
n_neighbors x n_components, with the neighbor graph computed once; a suggested pair, a CSV table,
heatmaps and a record in a zarr store."""

from __future__ import annotations

import argparse

from . import common

HELP = (
    "reconstruction error and neighborhood score over a grid of n_neighbors x n_components "
    "(kNN computed once), and a suggested pair."
)


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
    parser.add_argument(
        "--quality-sample",
        type=int,
        default=1000,
        help="points sampled for the neighborhood score (trustworthiness and continuity); 0: "
        "none, and no suggestion.",
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
    from ..sweep import SCORE_TOLERANCE, plot, reconstruction_error_grid, suggest, write_csv

    ks = parse_grid(args.n_neighbors, "--n-neighbors")
    ds = parse_grid(args.n_components, "--n-components")
    if args.quality_sample < 0:
        raise ValueError(f"--quality-sample must be >= 0; got {args.quality_sample}.")
    source = common.open_input(args)
    common.check_out(args)  # no input check: a sweep is recorded beside any embedding of the store
    with common.scheduler(args) as where:
        print(f"sweep on {where}: n_neighbors {ks} x n_components {ds}")
        rows = reconstruction_error_grid(
            source,
            ks,
            ds,
            **common.solver_options(args),
            quality_sample=args.quality_sample,
            verbose=not args.quiet,
        )
    prefix = common.prefix(args.out)
    write_csv(rows, prefix + ".csv")
    plot(rows, prefix + ".png")
    if args.overwrite:
        clear_store(args.out, name="--out")
    update_attributes(args.out, {"sweep": [asdict(r) for r in rows]})
    for r in rows:
        score = "" if r.trustworthiness is None else f"  score {r.score:.4f}"
        print(
            f"  k={r.n_neighbors:3d} d={r.n_components:3d}  error {r.reconstruction_error:.3e}"
            + score
        )
    choice = suggest(rows)
    if choice:
        print(
            f"  suggested: --n-neighbors {choice[0]} --n-components {choice[1]} (the fewest "
            f"components scoring within {SCORE_TOLERANCE} of the best, with their best n_neighbors)"
        )
    print(f"  table: {prefix}.csv, heatmaps: {prefix}.png, recorded in {args.out}")
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
